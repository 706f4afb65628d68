#include "rpc/parked_handles.hpp"

#include "rpc/host.hpp"

namespace hawser::detail {

ParkedHandles::ParkedHandles(std::shared_ptr<Host> host, std::chrono::milliseconds retry)
    : host_(std::move(host)), retry_(retry) {}

void ParkedHandles::park(std::shared_ptr<void> handle) {
    {
        std::lock_guard lock(mu_);
        if (!closed_) handles_.push_back(std::move(handle));  // leaves `handle` empty
    }
    if (handle) return;  // closed: let go here, as the function returns
    let_go_on_worker();
}

void ParkedHandles::close() {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    let_go();
    // A worker may be letting go of handles it took before: close() returns after them too.
    std::unique_lock lock(mu_);
    done_.wait(lock, [&] { return letting_go_ == 0; });
}

std::size_t ParkedHandles::size() const {
    std::lock_guard lock(mu_);
    return handles_.size();
}

void ParkedHandles::let_go_on_worker() {
    if (size() == 0) return;
    bool posted = host_->try_post_work([weak = weak_from_this()] {
        if (auto self = weak.lock()) self->let_go();
    });
    if (!posted) arm_retry();
}

void ParkedHandles::let_go() {
    std::vector<std::shared_ptr<void>> handles;
    {
        std::lock_guard lock(mu_);
        handles.swap(handles_);
        ++letting_go_;
    }
    handles.clear();  // waits for what each waits for
    std::lock_guard lock(mu_);
    if (--letting_go_ == 0) done_.notify_all();
}

// On the first loop: its thread only takes this object's lock, and posts the job.
void ParkedHandles::arm_retry() {
    {
        std::lock_guard lock(mu_);
        if (retry_armed_ || closed_ || handles_.empty()) return;
        retry_armed_ = true;
    }
    host_->runtime.loop(0).post_after(retry_, [weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self) return;
        {
            std::lock_guard lock(self->mu_);
            self->retry_armed_ = false;
        }
        self->let_go_on_worker();
    });
}

}  // namespace hawser::detail
