#include "wire/frame.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace hawser;
using namespace hawser::detail;

namespace {

std::vector<std::uint8_t> frame_of(const std::string& body, const ProtocolMark& mark = {}) {
    std::vector<std::uint8_t> out;
    append_frame(out, mark, body.size(),
                 [&](std::uint8_t* p) { std::copy(body.begin(), body.end(), p); });
    return out;
}

struct Collector {
    std::vector<std::string> bodies;
    bool operator()(std::span<const std::uint8_t> b) {
        bodies.emplace_back(b.begin(), b.end());
        return true;
    }
};

}  // namespace

TEST(FrameDecoder, WholeFramesInOneRead) {
    auto bytes = frame_of("one");
    auto two = frame_of("");
    auto three = frame_of(std::string(1000, 'x'));
    bytes.insert(bytes.end(), two.begin(), two.end());
    bytes.insert(bytes.end(), three.begin(), three.end());
    FrameDecoder d;
    Collector c;
    EXPECT_EQ(d.feed(bytes, FrameConfig{}, std::ref(c)), FrameError::none);
    ASSERT_EQ(c.bodies.size(), 3u);
    EXPECT_EQ(c.bodies[0], "one");
    EXPECT_EQ(c.bodies[1], "");
    EXPECT_EQ(c.bodies[2].size(), 1000u);
    EXPECT_EQ(d.buffered(), 0u);
}

// A reader that pauses after each frame gets every frame, in order, one resume() at a time,
// whether the pause comes in a whole-frame read or while finishing a split one.
TEST(FrameDecoder, PausedInputIsHeldAndResumed) {
    std::vector<std::uint8_t> bytes;
    for (auto body : {"a", "bb", "ccc", "dddd"}) {
        auto f = frame_of(body);
        bytes.insert(bytes.end(), f.begin(), f.end());
    }
    for (std::size_t split : {std::size_t(0), std::size_t(5), std::size_t(20)}) {
        FrameDecoder d;
        std::vector<std::string> got;
        auto pausing = [&](std::span<const std::uint8_t> b) {
            got.emplace_back(b.begin(), b.end());
            return false;
        };
        if (split) {
            ASSERT_EQ(d.feed(std::span(bytes).first(split), FrameConfig{}, pausing),
                      FrameError::none);
        }
        ASSERT_EQ(d.feed(std::span(bytes).subspan(split), FrameConfig{}, pausing),
                  FrameError::none);
        while (d.buffered()) {
            ASSERT_EQ(d.resume(FrameConfig{}, pausing), FrameError::none);
        }
        EXPECT_EQ(got, (std::vector<std::string>{"a", "bb", "ccc", "dddd"})) << "split " << split;
    }
}

TEST(FrameDecoder, AnySplitOfTheStreamGivesTheSameFrames) {
    auto bytes = frame_of("alpha");
    auto b2 = frame_of("beta-beta");
    bytes.insert(bytes.end(), b2.begin(), b2.end());
    for (std::size_t chunk = 1; chunk <= bytes.size(); ++chunk) {
        FrameDecoder d;
        Collector c;
        for (std::size_t at = 0; at < bytes.size(); at += chunk) {
            auto n = std::min(chunk, bytes.size() - at);
            ASSERT_EQ(d.feed(std::span(bytes).subspan(at, n), FrameConfig{}, std::ref(c)),
                      FrameError::none);
        }
        ASSERT_EQ(c.bodies.size(), 2u) << "chunk " << chunk;
        EXPECT_EQ(c.bodies[0], "alpha");
        EXPECT_EQ(c.bodies[1], "beta-beta");
        EXPECT_EQ(d.buffered(), 0u);  // nothing kept between frames
    }
}

TEST(FrameDecoder, WrongHeadMarkIsRejectedFromTheFirstByte) {
    FrameDecoder d;
    Collector c;
    std::uint8_t get[] = {'G'};
    EXPECT_EQ(d.feed(get, FrameConfig{}, std::ref(c)), FrameError::bad_mark);
}

TEST(FrameDecoder, WrongTailMarkIsRejected) {
    auto bytes = frame_of("body");
    bytes.back() ^= 1;
    FrameDecoder d;
    Collector c;
    EXPECT_EQ(d.feed(bytes, FrameConfig{}, std::ref(c)), FrameError::bad_mark);
    EXPECT_TRUE(c.bodies.empty());
}

TEST(FrameDecoder, OtherDeploymentsMarkIsRejected) {
    ProtocolMark other{{'A', 'B', 'C', 'D'}, {'d', 'c', 'b', 'a'}};
    auto bytes = frame_of("x", other);
    FrameDecoder d;
    Collector c;
    EXPECT_EQ(d.feed(bytes, FrameConfig{}, std::ref(c)), FrameError::bad_mark);
    FrameDecoder d2;
    EXPECT_EQ(d2.feed(bytes, FrameConfig{other, 1024}, std::ref(c)), FrameError::none);
    EXPECT_EQ(c.bodies.size(), 1u);
}

TEST(FrameDecoder, TooLargeIsRejectedBeforeTheBodyArrives) {
    FrameConfig cfg;
    cfg.max_body = 100;
    std::vector<std::uint8_t> head(8);
    std::copy(cfg.mark.head.begin(), cfg.mark.head.end(), head.begin());
    put_u32(head.data() + 4, 101);
    FrameDecoder d;
    Collector c;
    EXPECT_EQ(d.feed(head, cfg, std::ref(c)), FrameError::too_large);
    // Split across reads too.
    FrameDecoder d2;
    EXPECT_EQ(d2.feed(std::span(head).first(6), cfg, std::ref(c)), FrameError::none);
    EXPECT_EQ(d2.feed(std::span(head).subspan(6), cfg, std::ref(c)), FrameError::too_large);
}

TEST(FrameDecoder, StopsWhenTheHandlerSaysSo) {
    auto bytes = frame_of("a");
    auto b = frame_of("b");
    bytes.insert(bytes.end(), b.begin(), b.end());
    FrameDecoder d;
    int calls = 0;
    d.feed(bytes, FrameConfig{}, [&](auto) { return ++calls < 1; });
    EXPECT_EQ(calls, 1);
}
