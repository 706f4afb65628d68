// Jobs: the cloud's work on the worker pool (password hashes, storage), counted so that stop()
// (~Cloud) can wait for it: after stop() no job starts, so none touches the store once the
// Cloud has let go of it.
// Ownership: shared by the cloud's parts; every job holds it until it has ended.
// Thread safety: any thread.
#pragma once

#include <spdlog/spdlog.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>

#include "hawser/connection.hpp"
#include "rpc/host.hpp"

namespace hawser::cloud::detail {

class Jobs : public std::enable_shared_from_this<Jobs> {
  public:
    explicit Jobs(std::shared_ptr<hawser::detail::Host> host) : host_(std::move(host)) {}

    hawser::detail::Host& host() const noexcept { return *host_; }
    const std::shared_ptr<hawser::detail::Host>& host_ptr() const noexcept { return host_; }

    enum class Posted { ok, stopped, full };
    // Runs `job` on the worker pool as a counted job; nothing runs unless it answers ok. A job
    // that throws is logged and `failed` runs instead of the rest of it. Both are destroyed
    // before the job counts as ended: what they hold goes while stop() still waits.
    Posted post(std::function<void()> job, std::function<void()> failed = {}) {
        if (!start()) return Posted::stopped;
        bool queued = host_->try_post_work([self = shared_from_this(), job = std::move(job),
                                            failed = std::move(failed)]() mutable {
            try {
                job();
            } catch (const std::exception& e) {
                spdlog::error("hawser cloud: {}", e.what());
                if (failed) failed();
            } catch (...) {
                spdlog::error("hawser cloud: a job failed with an unknown exception");
                if (failed) failed();
            }
            job = nullptr;
            failed = nullptr;
            self->end();
        });
        if (queued) return Posted::ok;
        end();
        return Posted::full;
    }

    // Runs `f` with connection `id` on its IO thread (a connection is only ever released
    // there), if it is still open by then.
    void with_connection(ConnectionId id, std::function<void(const Connection&)> f) {
        // A connection's id holds the index of its loop in its low byte (Host::next_id).
        host_->post_user(id & 0xff, "cloud", [host = host_, id, f = std::move(f)] {
            if (auto conn = host->find(id)) f(Connection(conn));
        });
    }

    // For work that is not a posted job (a job's own continuation): false once stopping.
    bool start() {
        std::lock_guard lock(mu_);
        if (stopping_) return false;
        ++jobs_;
        return true;
    }
    void end() {
        std::lock_guard lock(mu_);
        if (--jobs_ == 0) done_.notify_all();
    }
    // Refuses new jobs and waits for those under way.
    void stop() {
        std::unique_lock lock(mu_);
        stopping_ = true;
        done_.wait(lock, [&] { return jobs_ == 0; });
    }

    // Posts `job` for a command: a stopped cloud, a full pool or a job that throws fail `reply`
    // (false when the job will not run).
    template <class Reply, class Job>
    bool post_for(const Reply& reply, Job job) {
        auto posted = post(std::move(job), [reply] {
            reply.fail(Errc::handler_error, "the cloud service failed; see the server log");
        });
        if (posted == Posted::stopped)
            reply.fail(Errc::shutting_down, "the cloud service stopped");
        else if (posted == Posted::full)
            reply.fail(Errc::overloaded, "the server is busy; try again shortly");
        return posted == Posted::ok;
    }

  private:
    std::shared_ptr<hawser::detail::Host> host_;
    std::mutex mu_;
    std::condition_variable done_;
    std::size_t jobs_ = 0;
    bool stopping_ = false;
};

// Counts work that is not a posted job (an IO thread's hop to the cluster) as one while it
// lives: ~Cloud waits for it, and none starts after (what it reaches may be gone by then).
class JobTicket {
  public:
    explicit JobTicket(Jobs& jobs) : jobs_(jobs.start() ? &jobs : nullptr) {}
    ~JobTicket() {
        if (jobs_) jobs_->end();
    }
    JobTicket(const JobTicket&) = delete;
    JobTicket& operator=(const JobTicket&) = delete;
    explicit operator bool() const { return jobs_ != nullptr; }

  private:
    Jobs* jobs_;
};

}  // namespace hawser::cloud::detail
