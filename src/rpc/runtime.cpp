// Runtime: the public face of RuntimeImpl (loops and worker pool). Built and destroyed on one
// non-IO thread.
#include "hawser/runtime.hpp"

#include "rpc/loop.hpp"

namespace hawser {

Runtime::Runtime(RuntimeOptions options) : impl_(std::make_unique<detail::RuntimeImpl>(options)) {}
Runtime::~Runtime() = default;

std::size_t Runtime::io_threads() const noexcept {
    return impl_->size();
}

bool Runtime::on_io_thread() noexcept {
    return detail::Loop::current() != nullptr;
}

}  // namespace hawser
