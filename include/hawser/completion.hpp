// How an asynchronous Hawser operation hands back its Result<R>, chosen by its last argument, as
// asio's completion tokens do:
//   a callable void(Result<R>)  runs once, on the IO thread that completes the operation
//   use_task                    the operation returns an awaitable: co_await it
//   use_wait                    blocks this thread (never an IO thread: would_deadlock)
// Thread safety: the tokens are empty values; complete() runs on the caller's thread.
#pragma once

#include <functional>
#include <future>
#include <type_traits>
#include <utility>

#include "hawser/error.hpp"
#include "hawser/runtime.hpp"
#include "hawser/task.hpp"

namespace hawser {

struct UseTask {};
inline constexpr UseTask use_task{};  // co_await the operation
struct UseWait {};
inline constexpr UseWait use_wait{};  // block until it completes (not on an IO thread)

namespace detail {

// Blocks until start(done) calls done. Every operation completes (result, error, timeout or
// disconnect); one whose callback was dropped uncalled (its loop was stopped) ends the wait as
// `disconnected` instead of blocking forever.
template <class R, class Start>
Result<R> wait_for(Start&& start, std::string_view what) {
    if (Runtime::on_io_thread())
        return Error{Errc::would_deadlock,
                     std::string(what) + ": blocking on an IO thread; use a callback or co_await"};
    auto promise = std::make_shared<std::promise<Result<R>>>();
    auto future = promise->get_future();
    // The callback alone holds the promise: dropped uncalled, it breaks it, and the wait ends.
    start(std::function<void(Result<R>)>(
        [promise = std::move(promise)](Result<R> r) { promise->set_value(std::move(r)); }));
    try {
        return future.get();
    } catch (const std::future_error&) {  // broken promise: the callback died uncalled
        return Error{Errc::disconnected, std::string(what) + ": abandoned (shutdown)"};
    }
}

// Starts an operation, start(std::function<void(Result<R>)>), the way `token` asks.
template <class R, class Start, class Token>
auto complete(Start start, Token&& token, std::string_view what) {
    using Done = std::function<void(Result<R>)>;
    if constexpr (std::is_same_v<std::decay_t<Token>, UseTask>) {
        auto begin = [start = std::move(start)](auto done) mutable {
            start(Done(std::move(done)));
        };
        return CallbackAwaiter<Result<R>, decltype(begin)>{std::move(begin), {}};
    } else if constexpr (std::is_same_v<std::decay_t<Token>, UseWait>) {
        return wait_for<R>(std::move(start), what);
    } else {
        static_assert(std::is_invocable_v<std::decay_t<Token>&, Result<R>>,
                      "the token is a callable taking the operation's Result, hawser::use_task "
                      "or hawser::use_wait");
        start(Done(std::forward<Token>(token)));
    }
}

}  // namespace detail
}  // namespace hawser
