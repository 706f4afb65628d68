// Task<T>: a lazy C++20 coroutine for handlers and client code, and spawn() to run one detached.
// A Task resumes on whichever thread completes what it awaits; awaiting a Hawser call resumes it
// on that connection's IO thread. Owned by its caller; move-only.
#pragma once

#include <atomic>
#include <coroutine>
#include <exception>
#include <functional>
#include <optional>
#include <utility>
#include <variant>

namespace hawser {

template <class T = void>
class Task;

namespace detail {

template <class T>
struct TaskResult {
    std::variant<std::monostate, T, std::exception_ptr> value;
    void return_value(T v) { value.template emplace<1>(std::move(v)); }
    void unhandled_exception() { value.template emplace<2>(std::current_exception()); }
    T take() {
        if (value.index() == 2) std::rethrow_exception(std::get<2>(value));
        return std::move(std::get<1>(value));
    }
};

template <>
struct TaskResult<void> {
    std::exception_ptr error;
    void return_void() {}
    void unhandled_exception() { error = std::current_exception(); }
    void take() {
        if (error) std::rethrow_exception(error);
    }
};

}  // namespace detail

template <class T>
class [[nodiscard]] Task {
  public:
    struct promise_type : detail::TaskResult<T> {
        std::coroutine_handle<> continuation = std::noop_coroutine();
        Task get_return_object() {
            return Task(std::coroutine_handle<promise_type>::from_promise(*this));
        }
        std::suspend_always initial_suspend() noexcept { return {}; }
        auto final_suspend() noexcept {
            struct Final {
                bool await_ready() noexcept { return false; }
                std::coroutine_handle<> await_suspend(
                    std::coroutine_handle<promise_type> h) noexcept {
                    return h.promise().continuation;
                }
                void await_resume() noexcept {}
            };
            return Final{};
        }
    };

    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) {
            if (h_) h_.destroy();
            h_ = std::exchange(o.h_, {});
        }
        return *this;
    }
    ~Task() {
        if (h_) h_.destroy();
    }

    // co_await task: starts it and resumes the awaiter when it finishes (symmetric transfer).
    auto operator co_await() && noexcept {
        struct Awaiter {
            std::coroutine_handle<promise_type> h;
            bool await_ready() noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<> caller) noexcept {
                h.promise().continuation = caller;
                return h;
            }
            T await_resume() { return h.promise().take(); }
        };
        return Awaiter{h_};
    }

  private:
    explicit Task(std::coroutine_handle<promise_type> h) : h_(h) {}
    std::coroutine_handle<promise_type> h_;
};

namespace detail {

// A coroutine that starts at once and frees itself at the end.
struct Detached {
    struct promise_type {
        Detached get_return_object() noexcept { return {}; }
        std::suspend_never initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() noexcept {}
        void unhandled_exception() noexcept { std::terminate(); }
    };
};

template <class T>
Detached run_detached(Task<T> task,
                      std::function<void(std::optional<T>, std::exception_ptr)> done) {
    std::exception_ptr error;
    std::optional<T> value;
    try {
        value.emplace(co_await std::move(task));
    } catch (...) {
        error = std::current_exception();
    }
    if (done) done(std::move(value), error);
}

inline Detached run_detached(Task<void> task, std::function<void(std::exception_ptr)> done) {
    std::exception_ptr error;
    try {
        co_await std::move(task);
    } catch (...) {
        error = std::current_exception();
    }
    if (done) done(error);
}

// Adapts a callback-style operation start(callback) into an awaitable. The callback may run on
// any thread, even inside start(); then the coroutine simply does not suspend.
template <class R, class Start>
struct CallbackAwaiter {
    Start start;
    std::optional<R> result;
    std::atomic<int> state{0};  // 0 started, 1 suspended, 2 completed
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
        start([this, h](R r) mutable {
            result.emplace(std::move(r));
            if (state.exchange(2, std::memory_order_acq_rel) == 1) h.resume();
        });
        return state.exchange(1, std::memory_order_acq_rel) != 2;
    }
    R await_resume() { return std::move(*result); }
};

}  // namespace detail

// Runs a task to completion without an owner. An exception escaping it goes to on_error, or
// terminates the process if there is none.
inline void spawn(Task<void> task, std::function<void(std::exception_ptr)> on_error = {}) {
    detail::run_detached(std::move(task), [on_error = std::move(on_error)](std::exception_ptr e) {
        if (!e) return;
        if (on_error)
            on_error(e);
        else
            std::terminate();
    });
}

}  // namespace hawser
