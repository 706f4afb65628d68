// MemoryTransport (see memory_transport.hpp). Readiness is posted to the waiting end's loop,
// never delivered inside the call that caused it, as a reactor would.
#include "rpc/memory_transport.hpp"

#include <asio/error.hpp>
#include <mutex>
#include <vector>

#include "rpc/loop.hpp"

namespace hawser::detail {

namespace {

// One direction: written by one end, read by the other.
struct Pipe {
    std::mutex mu;
    std::vector<std::uint8_t> bytes;
    std::size_t read_pos = 0;
    bool closed = false;  // either end closed: the reader sees eof once the bytes are read
    std::shared_ptr<TransportUser> reader, writer;  // waiting for readable / writable
    Loop* reader_loop = nullptr;
    Loop* writer_loop = nullptr;
    std::size_t capacity;
    explicit Pipe(std::size_t c) : capacity(c) {}
    std::size_t held() const { return bytes.size() - read_pos; }
};

void notify_readable(Loop* loop, std::shared_ptr<TransportUser> user, std::error_code ec = {}) {
    if (user) loop->post([user = std::move(user), ec] { user->on_readable(ec); });
}
void notify_writable(Loop* loop, std::shared_ptr<TransportUser> user, std::error_code ec = {}) {
    if (user) loop->post([user = std::move(user), ec] { user->on_writable(ec); });
}

class MemoryTransport final : public Transport {
  public:
    MemoryTransport(Loop& loop, std::shared_ptr<Pipe> in, std::shared_ptr<Pipe> out)
        : loop_(loop), in_(std::move(in)), out_(std::move(out)) {}
    ~MemoryTransport() override { close(); }

    void wait_readable(std::shared_ptr<TransportUser> user) override {
        std::lock_guard lock(in_->mu);
        if (in_->held() > 0 || in_->closed) return notify_readable(&loop_, std::move(user));
        in_->reader = std::move(user);
        in_->reader_loop = &loop_;
    }
    void wait_writable(std::shared_ptr<TransportUser> user) override {
        std::lock_guard lock(out_->mu);
        if (out_->held() < out_->capacity || out_->closed)
            return notify_writable(&loop_, std::move(user));
        out_->writer = std::move(user);
        out_->writer_loop = &loop_;
    }
    bool peer_gone() override {
        std::lock_guard lock(in_->mu);
        return in_->closed;
    }
    bool input_waiting() override {
        std::lock_guard lock(in_->mu);
        return in_->held() > 0;
    }
    std::size_t read_some(std::span<std::uint8_t> into, std::error_code& ec) override {
        std::lock_guard lock(in_->mu);
        ec = {};
        std::size_t n = std::min(into.size(), in_->held());
        if (n == 0) {
            ec = in_->closed ? std::error_code(asio::error::eof)
                             : std::error_code(asio::error::would_block);
            return 0;
        }
        std::copy_n(in_->bytes.begin() + std::ptrdiff_t(in_->read_pos), n, into.begin());
        in_->read_pos += n;
        if (in_->read_pos == in_->bytes.size()) {
            in_->bytes.clear();
            in_->read_pos = 0;
        }
        notify_writable(in_->writer_loop, std::move(in_->writer));
        return n;
    }
    std::size_t write_some(std::span<const asio::const_buffer> buffers,
                           std::error_code& ec) override {
        std::lock_guard lock(out_->mu);
        ec = {};
        if (out_->closed) {
            ec = asio::error::broken_pipe;
            return 0;
        }
        std::size_t room = out_->capacity - std::min(out_->capacity, out_->held()), n = 0;
        for (const auto& b : buffers) {
            std::size_t take = std::min(room - n, b.size());
            auto p = static_cast<const std::uint8_t*>(b.data());
            out_->bytes.insert(out_->bytes.end(), p, p + take);
            n += take;
            if (n == room) break;
        }
        if (n == 0) {
            ec = asio::error::would_block;
            return 0;
        }
        notify_readable(out_->reader_loop, std::move(out_->reader));
        return n;
    }
    void close() override {
        for (auto* pipe : {in_.get(), out_.get()}) {
            std::lock_guard lock(pipe->mu);
            if (pipe->closed && !pipe->reader && !pipe->writer) continue;
            pipe->closed = true;
            // The other end learns of it; this end's own waits end as a closed socket's do.
            bool ours_reading = pipe == in_.get();
            notify_readable(pipe->reader_loop, std::move(pipe->reader),
                            ours_reading ? asio::error::operation_aborted : std::error_code{});
            notify_writable(pipe->writer_loop, std::move(pipe->writer),
                            ours_reading ? std::error_code{} : asio::error::operation_aborted);
        }
    }

  private:
    Loop& loop_;
    std::shared_ptr<Pipe> in_, out_;
};

}  // namespace

std::pair<std::unique_ptr<Transport>, std::unique_ptr<Transport>> make_memory_pair(
    Loop& first, Loop& second, std::size_t capacity) {
    auto a_to_b = std::make_shared<Pipe>(capacity), b_to_a = std::make_shared<Pipe>(capacity);
    return {std::make_unique<MemoryTransport>(first, b_to_a, a_to_b),
            std::make_unique<MemoryTransport>(second, a_to_b, b_to_a)};
}

}  // namespace hawser::detail
