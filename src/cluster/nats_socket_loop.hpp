// NatsSocketLoop: reads and writes one nats.c connection's socket on a thread of its own, as
// nats.c's "external event loop" (natsOptions_SetEventLoop), so that nats.c never waits on the
// socket holding its connection lock (but with TLS, which NatsLink therefore leaves to nats.c's
// own threads, and in the connect handshake). Without it nats.c's reader takes that lock after
// every read, and a write stuck behind a NATS that does not read (the lock held up to the write
// deadline) stops the node's reading too; NATS, unable to write to the node, then stalls its
// other clients.
// Here a write waits for the socket to be writable, and reading goes on meanwhile.
// A write that has waited `write_deadline` shuts the socket down: nats.c then reconnects.
// Ownership: owned by its NatsLink, and must outlive the natsConnection (nats.c calls it until
// the connection closes). Thread affinity: nats.c calls the callbacks from any of its threads,
// often holding the connection's lock, so they only note what to poll and wake the loop's
// thread, which alone calls into nats.c. stop() and wait_written() from any other thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

struct __natsConnection;
struct __natsOptions;

namespace hawser::detail {

class NatsSocketLoop {
  public:
    explicit NatsSocketLoop(std::chrono::milliseconds write_deadline);
    ~NatsSocketLoop();  // stop()
    NatsSocketLoop(const NatsSocketLoop&) = delete;
    NatsSocketLoop& operator=(const NatsSocketLoop&) = delete;

    // Makes the connection these options open use this loop. false if nats.c refused.
    bool attach_to(__natsOptions* options);
    // Times the loop has tried to write to the socket, and a wait for that to pass `seen`: false
    // once the loop stopped or release_waiters() was called (then at once), true otherwise
    // (also when `timeout` passed).
    std::uint64_t writes() const;
    bool wait_written(std::uint64_t seen, std::chrono::milliseconds timeout);
    void release_waiters();  // for good: the link is closing
    // Ends the thread (it finishes the read or write under way). nats.c may still call the
    // callbacks, which then only note what they ask. Nothing is read or written any more: a
    // flush (natsConnection_Close's too, when nats.c still buffers) waits out its timeout.
    void stop();
    // Times the loop found NATS had taken nothing written for the write deadline.
    std::uint64_t write_timeouts() const;
    // Returns once nats.c no longer holds this loop attached to a connection. nats.c detaches
    // when the connection closes, in the closing thread and after posting the closed event: a
    // close nats.c made itself (from its reconnect thread; or from this loop's thread, in a
    // read, which stop() outwaits) may still be detaching when the event has arrived, and the
    // loop must outlive that.
    void wait_detached();

  private:
    // What nats.c's callbacks (see nats.h) ask: a connect or reconnect starts reading the new
    // socket; "stop reading" comes just before nats.c closes the socket.
    void attached(__natsConnection* nc, int socket);
    void want_read(bool add);
    void want_write(bool add);
    void detached();
    void forget_socket();  // under mu_: nats.c closes it next (or did)
    void wake();           // under mu_
    void run();

    const std::chrono::milliseconds write_deadline_;
    mutable std::mutex mu_;
    std::condition_variable written_;
    __natsConnection* nc_ = nullptr;
    int fd_ = -1;                 // the socket read (polled); -1 once nats.c is about to close it
    std::uint64_t attaches_ = 0;  // sockets given, so that a number reused is told apart
    bool attached_ = false;       // between nats.c's attach and its detach
    std::condition_variable detached_;
    bool writing_ = false;  // nats.c has something to write
    std::chrono::steady_clock::time_point write_waits_since_{};
    std::uint64_t writes_ = 0;  // times the loop wrote, for wait_written
    std::uint64_t write_timeouts_ = 0;
    bool stopping_ = false, released_ = false;
    std::thread::id loop_thread_;
    int wake_fd_ = -1;    // an eventfd: the callbacks changed what to poll
    std::thread thread_;  // last: starts once the rest is ready
};

}  // namespace hawser::detail
