#include "hawser/task.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

using namespace hawser;

namespace {
Task<int> answer() {
    co_return 42;
}
Task<int> add_one() {
    co_return (co_await answer()) + 1;
}
Task<int> fails() {
    throw std::runtime_error("boom");
    co_return 0;
}
}  // namespace

TEST(Task, ChainsAndPropagatesValues) {
    int got = 0;
    spawn([](int& out) -> Task<void> { out = co_await add_one(); }(got));
    EXPECT_EQ(got, 43);
}

TEST(Task, PropagatesExceptionsToTheAwaiter) {
    std::string what;
    spawn([](std::string& out) -> Task<void> {
        try {
            co_await fails();
        } catch (const std::exception& e) {
            out = e.what();
        }
    }(what));
    EXPECT_EQ(what, "boom");
}

TEST(Task, SpawnReportsEscapingExceptions) {
    bool reported = false;
    spawn([]() -> Task<void> { co_await fails(); }(), [&](std::exception_ptr) { reported = true; });
    EXPECT_TRUE(reported);
}

TEST(Task, CallbackAwaiterCompletingInsideStartDoesNotSuspend) {
    int got = 0;
    spawn([](int& out) -> Task<void> {
        auto start = [](auto done) { done(7); };
        out = co_await detail::CallbackAwaiter<int, decltype(start)>{start, {}};
    }(got));
    EXPECT_EQ(got, 7);
}
