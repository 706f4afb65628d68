// Wakeup: the driver's threads wait for conditions on state guarded by its mutex; the IO thread
// that changes that state wakes them only once a condition holds. A notify on every change was
// a futex wake and a context switch for every message and reply a worker received (tens of
// microseconds each on a virtual machine), paid by the load generator on the cores it shares
// with the servers.
// Thread affinity: any thread waits and calls changed(), always with the driver's mutex held
// (wait_* are given its lock); each condition is evaluated under that mutex.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <vector>

namespace hawser::bench {

class Wakeup {
  public:
    template <class Clock, class Duration, class Ready>
    bool wait_until(std::unique_lock<std::mutex>& lock,
                    const std::chrono::time_point<Clock, Duration>& deadline, Ready ready) {
        std::function<bool()> condition = ready;
        waiting_.push_back(&condition);
        struct Leave {  // even if the condition throws
            std::vector<std::function<bool()>*>& waiting;
            std::function<bool()>* condition;
            ~Leave() { std::erase(waiting, condition); }
        } leave{waiting_, &condition};
        return cv_.wait_until(lock, deadline, ready);
    }
    template <class Rep, class Period, class Ready>
    bool wait_for(std::unique_lock<std::mutex>& lock,
                  const std::chrono::duration<Rep, Period>& timeout, Ready ready) {
        return wait_until(lock, std::chrono::steady_clock::now() + timeout, std::move(ready));
    }
    // The guarded state changed: wakes the waiters if one of their conditions now holds.
    void changed() {
        if (std::any_of(waiting_.begin(), waiting_.end(), [](auto* c) { return (*c)(); }))
            cv_.notify_all();
    }

  private:
    std::condition_variable cv_;
    std::vector<std::function<bool()>*> waiting_;  // the conditions waited for now
};

}  // namespace hawser::bench
