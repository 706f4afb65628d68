// Control: the coordinator and a worker process talk over a socketpair in JSON lines. One
// object per line; a worker answers every command with one "result" line and may send
// "progress" lines before it.
// Thread affinity: one thread per end.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace hawser::bench {

class Control {
  public:
    explicit Control(int fd) : fd_(fd) {}
    int fd() const noexcept { return fd_; }

    bool send(const nlohmann::json& message) {
        // Error texts may carry bytes that are not UTF-8: replaced, not thrown on.
        auto line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
        std::size_t off = 0;
        while (off < line.size()) {
            auto n = ::write(fd_, line.data() + off, line.size() - off);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            off += std::size_t(n);
        }
        return true;
    }

    // The next whole line already read, if any.
    std::optional<nlohmann::json> next() {
        auto nl = in_.find('\n');
        if (nl == std::string::npos) return std::nullopt;
        auto line = in_.substr(0, nl);
        in_.erase(0, nl + 1);
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded()) return nlohmann::json{{"type", "bad"}, {"line", line}};
        return j;
    }
    // Reads what is there (the fd is readable); false at end of stream or on an error.
    bool fill() {
        char buf[64 << 10];
        auto n = ::read(fd_, buf, sizeof buf);
        if (n < 0 && errno == EINTR) return true;
        if (n <= 0) return false;
        in_.append(buf, std::size_t(n));
        return true;
    }
    // Blocks for the next line; nullopt when the other end is gone.
    std::optional<nlohmann::json> receive() {
        for (;;) {
            if (auto j = next()) return j;
            if (!fill()) return std::nullopt;
        }
    }

  private:
    int fd_;
    std::string in_;
};

}  // namespace hawser::bench
