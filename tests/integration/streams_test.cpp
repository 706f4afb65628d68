// Big streams over real loopback connections: content verified both ways, sinks and sources,
// refusals, cancels from each side (and by a stop token), a shutdown that lets a stream finish,
// many at once, calls interleaved with a
// transfer, files with resume after a cut connection and after a server restart, hash mismatch, a
// content hash the sender knows.
#include <atomic>
#include <filesystem>
#include <stop_token>
#include <thread>

#include "support.hpp"

using namespace hawser;
using namespace hawser::test;

namespace {

// A handler that reads a whole stream and hands the outcome to `out`.
struct Collected {
    std::string content;
    DataFrame metadata;
    std::optional<std::uint64_t> size;
    Error error;
};

Task<void> collect(IncomingStream in, std::shared_ptr<Slot<Collected>> out) {
    Collected c;
    c.metadata = in.metadata();
    c.size = in.size();
    auto source = in.accept();
    if (!source) {
        c.error = source.error();
        out->set(c);
        co_return;
    }
    for (;;) {
        auto chunk = co_await source->read();
        if (!chunk) {
            c.error = chunk.error();
            break;
        }
        if (chunk->empty()) break;
        c.content += *chunk;
    }
    out->set(c);
}

std::filesystem::path scratch_dir(const std::string& name) {
    auto dir = std::filesystem::temp_directory_path() /
               ("hawser-streams-" + name + "-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}

// A scratch root holding `content` as f.bin, and a store directory holding `part` as the part
// file an earlier attempt at storing f.bin left.
std::pair<std::filesystem::path, std::filesystem::path> stage_part(const std::string& name,
                                                                   const std::string& content,
                                                                   const std::string& part) {
    auto root = scratch_dir(name);
    auto store = root / "store";
    std::filesystem::create_directories(store);
    write_file(root / "f.bin", content);
    write_file(store / "f.bin.hawser-part", part);
    return {root, store};
}

std::array<std::uint8_t, 32> hash_of(std::string_view content) {
    ContentHasher h;
    h.update(content);
    return h.digest();
}

}  // namespace

TEST(Streams, MemoryStreamFromClientArrivesWholeAndVerified) {
    auto got = std::make_shared<Slot<Collected>>();
    Fixture f([&](Commands& c) {
        c.stream("store", [got](Request, IncomingStream in) -> Task<void> {
            return collect(std::move(in), got);
        });
    });
    auto content = random_bytes(3 * 1024 * 1024 + 17, 1);
    StreamOptions options;
    options.metadata << "photo.jpg" << 42;
    std::atomic<std::uint64_t> progress{0};
    options.on_progress = [&](std::uint64_t n) { progress = n; };
    auto r = f.to_server.send_stream("store", content, use_wait, options);
    ASSERT_TRUE(r) << r.error().message;
    auto c = got->get();
    EXPECT_EQ(c.error.code, Errc::ok) << c.error.message;
    EXPECT_EQ(c.content, content);
    EXPECT_EQ(c.size, content.size());
    EXPECT_EQ(c.metadata.get<std::string>(), "photo.jpg");
    EXPECT_EQ(c.metadata.get<int>(), 42);
    EXPECT_TRUE(eventually([&] { return progress.load() == content.size(); }));
}

TEST(Streams, SinkFromServerToClientInSeveralWrites) {
    auto got = std::make_shared<Slot<Collected>>();
    Fixture f({}, [&](Commands& c) {
        c.stream("download", [got](Request, IncomingStream in) -> Task<void> {
            return collect(std::move(in), got);
        });
    });
    auto sink = f.to_client.open_stream("download", use_wait);
    ASSERT_TRUE(sink) << sink.error().message;
    std::string all;
    for (int i = 0; i < 40; ++i) {
        auto part = random_bytes(100'000 + i, 100 + i);
        all += part;
        ASSERT_TRUE(sink->write(part, use_wait));
    }
    ASSERT_TRUE(sink->write("", use_wait));  // an empty write is fine
    auto second = std::make_shared<Slot<Result<void>>>();
    auto finished = sink->finish(use_wait);
    ASSERT_TRUE(finished) << finished.error().message;
    auto c = got->get();
    EXPECT_EQ(c.error.code, Errc::ok);
    EXPECT_EQ(c.content, all);
    EXPECT_FALSE(c.size);  // a sink's size is not known up front
    EXPECT_EQ(sink->write("late", use_wait).error().code, Errc::invalid_argument);
}

TEST(Streams, RefusalsAreTypedErrors) {
    Fixture f([&](Commands& c) {
        c.stream("closed", [](const Request&, IncomingStream in) {
            in.reject(Errc::not_allowed, "uploads are closed");
        });
        c.stream("ignored", [](const Request&, IncomingStream) {});  // dropped: refused
        c.stream("throws", [](const Request&, IncomingStream) { throw std::runtime_error("x"); });
    });
    auto r = f.to_server.send_stream("closed", "abc", use_wait);
    EXPECT_EQ(r.error().code, Errc::not_allowed);
    EXPECT_EQ(r.error().message, "uploads are closed");
    EXPECT_EQ(f.to_server.send_stream("ignored", "abc", use_wait).error().code, Errc::not_allowed);
    EXPECT_EQ(f.to_server.send_stream("throws", "abc", use_wait).error().code, Errc::not_allowed);
    EXPECT_EQ(f.to_server.send_stream("nobody", "abc", use_wait).error().code,
              Errc::unknown_command);
    EXPECT_EQ(f.to_server.send_file("closed", "/nonexistent/file", use_wait).error().code,
              Errc::not_found);
    // The connection carries on.
    EXPECT_TRUE(f.to_server.connected());
}

TEST(Streams, SenderCancelReachesTheReader) {
    auto got = std::make_shared<Slot<Collected>>();
    Fixture f([&](Commands& c) {
        c.stream("store", [got](Request, IncomingStream in) -> Task<void> {
            return collect(std::move(in), got);
        });
    });
    auto sink = f.to_server.open_stream("store", use_wait).value();
    ASSERT_TRUE(sink.write(random_bytes(200'000, 3), use_wait));
    sink.cancel();
    auto c = got->get();
    EXPECT_EQ(c.error.code, Errc::cancelled);
    EXPECT_EQ(sink.finish(use_wait).error().code, Errc::cancelled);
}

TEST(Streams, AStopTokenCancelsASendFromAnyThread) {
    // The server's handler reads one chunk, then waits until the test lets it go on: the
    // sender is held at the window meanwhile, and the stop comes while it is.
    Slot<Responder<std::string>> held;
    auto reader_saw = std::make_shared<Slot<Errc>>();
    Fixture f(
        [&](Commands& c) {
            c.stream("slow", [reader_saw](Request req, IncomingStream in) -> Task<void> {
                auto source = in.accept().value();
                bool asked = false;
                for (;;) {
                    auto chunk = co_await source.read();
                    if (!chunk || chunk->empty()) {
                        reader_saw->set(chunk ? Errc::ok : chunk.error().code);
                        co_return;
                    }
                    if (!std::exchange(asked, true))
                        (void)co_await req.connection().call("go", "", use_task);
                }
            });
        },
        [&](Commands& c) {
            c.console("go",
                      [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
        });
    std::stop_source stop;
    StreamOptions o;
    o.stop = stop.get_token();
    auto sent = std::make_shared<Slot<Result<void>>>();
    f.to_server.send_stream(
        "slow", std::string(16u << 20, 'z'), [sent](Result<void> r) { sent->set(r); }, o);
    auto go = held.get();
    stop.request_stop();  // this thread is neither loop's
    EXPECT_EQ(sent->get().error().code, Errc::cancelled);
    go.reply("go on");
    EXPECT_EQ(reader_saw->get(), Errc::cancelled);
    // A token stopped before the send: the stream never opens.
    StreamOptions stopped;
    stopped.stop = stop.get_token();
    EXPECT_EQ(f.to_server.send_stream("slow", "abc", use_wait, stopped).error().code,
              Errc::cancelled);
    EXPECT_TRUE(f.to_server.connected());
}

TEST(Streams, AStopAfterTheVerdictChangesNothing) {
    std::vector<std::shared_ptr<Slot<Collected>>> got{std::make_shared<Slot<Collected>>(),
                                                      std::make_shared<Slot<Collected>>()};
    std::atomic<std::size_t> streams{0};
    Fixture f([&](Commands& c) {
        c.stream("store", [&](Request, IncomingStream in) -> Task<void> {
            return collect(std::move(in), got.at(streams++));
        });
    });
    auto stop = std::make_unique<std::stop_source>();
    StreamOptions o;
    o.stop = stop->get_token();
    auto content = random_bytes(300'000, 32);
    ASSERT_TRUE(f.to_server.send_stream("store", content, use_wait, o));
    EXPECT_EQ(got[0]->get().content, content);
    stop->request_stop();  // the stream's callback went with it (ASan sees a use after free)
    stop.reset();
    ASSERT_TRUE(f.to_server.send_stream("store", content, use_wait));
    EXPECT_EQ(got[1]->get().content, content);
}

TEST(Streams, ShutdownLetsAStreamInFlightFinish) {
    // The server's handler stops after the first chunk until the test lets it go on: by then
    // the server is draining.
    Slot<Responder<std::string>> held;
    auto received = std::make_shared<Slot<std::size_t>>();
    Fixture f(
        [&](Commands& c) {
            echo_commands(c);
            c.stream("store", [received](Request req, IncomingStream in) -> Task<void> {
                auto source = in.accept().value();
                std::size_t n = 0;
                bool asked = false;
                for (;;) {
                    auto chunk = co_await source.read();
                    if (!chunk || chunk->empty()) break;
                    n += chunk->size();
                    if (!std::exchange(asked, true))
                        (void)co_await req.connection().call("go", "", use_task);
                }
                received->set(n);
            });
        },
        [&](Commands& c) {
            c.console("go",
                      [&](const Request&, std::string, Responder<std::string> r) { held.set(r); });
        });
    auto content = random_bytes(4u << 20, 31);
    auto sent = std::make_shared<Slot<Result<void>>>();
    f.to_server.send_stream("store", content, [sent](Result<void> r) { sent->set(r); });
    auto go = held.get();
    // The grace is long: the drain must end when the stream does, not at its deadline.
    Slot<bool> stopped;
    std::jthread stopper([&] {  // joined on every way out
        f.server->shutdown(120s);
        stopped.set(true);
    });
    ASSERT_TRUE(eventually([&] {
        auto r = f.to_server.call("echo", "x", use_wait);
        return !r && r.error().code == Errc::shutting_down;
    }));
    // A new stream is refused while the one in flight goes on.
    EXPECT_EQ(f.to_server.send_stream("store", "late", use_wait).error().code, Errc::shutting_down);
    EXPECT_EQ(f.to_client.send_stream("anything", "late", use_wait).error().code,
              Errc::shutting_down);
    go.reply("go on");
    auto r = sent->get(30s);
    EXPECT_TRUE(r) << r.error().message;
    EXPECT_EQ(received->get(30s), content.size());
    EXPECT_TRUE(stopped.get(60s));
    stopper.join();
    EXPECT_EQ(f.server->connection_count(), 0u);
}

TEST(Streams, ReceiverCancelStopsTheSender) {
    Fixture f([&](Commands& c) {
        c.stream("picky", [](Request, IncomingStream in) -> Task<void> {
            auto source = in.accept().value();
            auto first = co_await source.read();  // one chunk, then no more
            EXPECT_TRUE(first && !first->empty());
            source.finish(Errc::limit_exceeded, "too big for me");
        });
    });
    auto r = f.to_server.send_stream("picky", random_bytes(8 << 20, 4), use_wait);
    EXPECT_EQ(r.error().code, Errc::limit_exceeded);
    EXPECT_EQ(r.error().message, "too big for me");
    EXPECT_EQ(f.to_server.call("nothing", "x", use_wait).error().code, Errc::unknown_command);
}

TEST(Streams, ManyConcurrentStreamsAllVerified) {
    std::mutex mu;
    std::map<std::string, std::string> received;
    Fixture f([&](Commands& c) {
        c.stream("many", [&](Request, IncomingStream in) -> Task<void> {
            auto metadata = in.metadata();
            auto name = metadata.get<std::string>();
            auto source = in.accept().value();
            std::string all;
            for (;;) {
                auto chunk = co_await source.read();
                if (!chunk || chunk->empty()) break;
                all += *chunk;
            }
            std::lock_guard l(mu);
            received[name] = all;
        });
    });
    std::vector<std::string> contents;
    std::vector<std::shared_ptr<Slot<Result<void>>>> done;
    for (int i = 0; i < 24; ++i) {
        contents.push_back(random_bytes(300'000 + 1000 * i, 50 + i));
        auto slot = std::make_shared<Slot<Result<void>>>();
        done.push_back(slot);
        StreamOptions o;
        o.metadata << std::to_string(i);
        f.to_server.send_stream(
            "many", contents.back(), [slot](Result<void> r) { slot->set(r); }, o);
    }
    for (auto& d : done) EXPECT_TRUE(d->get(30s));
    std::lock_guard l(mu);
    ASSERT_EQ(received.size(), contents.size());
    for (int i = 0; i < 24; ++i) EXPECT_EQ(received[std::to_string(i)], contents[i]) << i;
}

TEST(Streams, CallsOvertakeATransferOnTheSameConnection) {
    // The server records how much of the stream had arrived when each call arrived: calls made
    // while the transfer runs arrive in the middle of it, not after it.
    std::atomic<std::uint64_t> arrived{0};
    std::mutex mu;
    std::vector<std::uint64_t> at_call;
    Fixture f([&](Commands& c) {
        c.stream("bulk", [&](Request, IncomingStream in) -> Task<void> {
            auto source = in.accept().value();
            for (;;) {
                auto chunk = co_await source.read();
                if (!chunk || chunk->empty()) break;
                arrived += chunk->size();
            }
        });
        c.console("mark", [&](const Request&, std::string_view) {
            std::lock_guard l(mu);
            at_call.push_back(arrived.load());
            return std::string("ok");
        });
    });
    const std::size_t total = 96u << 20;
    auto transfer = std::make_shared<Slot<Result<void>>>();
    f.to_server.send_stream("bulk", std::string(total, 'x'),
                            [transfer](Result<void> r) { transfer->set(r); });
    ASSERT_TRUE(eventually([&] { return arrived.load() > 0; }));
    int calls = 0;
    while (!transfer->has() && calls < 200) {
        ASSERT_TRUE(f.to_server.call("mark", "", use_wait));
        ++calls;
    }
    ASSERT_TRUE(transfer->get(60s));
    std::lock_guard l(mu);
    // Calls arrived in the middle of the stream's data (the last few may come after its last
    // byte, while its verdict travels back).
    auto during =
        std::count_if(at_call.begin(), at_call.end(), [&](std::uint64_t at) { return at < total; });
    EXPECT_GE(during, 5) << "the calls did not get through while the transfer ran";
    EXPECT_LT(at_call.front(), total / 2);
    EXPECT_TRUE(std::is_sorted(at_call.begin(), at_call.end()));
}

TEST(Streams, FileArrivesUnderItsRootAndTraversalIsRefused) {
    auto root = scratch_dir("files");
    auto results = std::make_shared<Slot<Result<ReceivedFile>>>();
    Fixture f([&](Commands& c) {
        c.stream("upload", [root, results](Request, IncomingStream in) -> Task<void> {
            auto metadata = in.metadata();
            auto name = metadata.get<std::string>();
            results->set(co_await receive_file(std::move(in), root / "store", name));
        });
    });
    auto source = root / "source.bin";
    auto content = random_bytes(5'000'001, 7);
    write_file(source, content);
    StreamOptions o;
    o.metadata << "a/b/../c.bin";
    EXPECT_EQ(f.to_server.send_file("upload", source.string(), use_wait, o).error().code,
              Errc::invalid_argument);
    EXPECT_EQ(results->get().error().code, Errc::invalid_argument);
    for (const auto& bad : std::vector<std::string>{"../x", "/etc/passwd", std::string("a\0b", 3),
                                                    "x.hawser-part", "d.hawser-part/x"}) {
        auto slot = std::make_shared<Slot<Result<ReceivedFile>>>();
        results = slot;  // the handler captured the old one: check by the sender's result
        StreamOptions b;
        b.metadata << bad;
        EXPECT_EQ(f.to_server.send_file("upload", source.string(), use_wait, b).error().code,
                  Errc::invalid_argument)
            << bad;
    }
    EXPECT_FALSE(std::filesystem::exists(root / "x"));
    StreamOptions good;
    good.metadata << "dir/photo.bin";
    ASSERT_TRUE(f.to_server.send_file("upload", source.string(), use_wait, good));
    EXPECT_EQ(read_file(root / "store/dir/photo.bin"), content);
    EXPECT_FALSE(std::filesystem::exists(root / "store/dir/photo.bin.hawser-part"));
    std::filesystem::remove_all(root);
}

TEST(Streams, FileResumesAfterTheConnectionIsCutAndAfterARestart) {
    auto root = scratch_dir("resume");
    auto store = root / "store";
    auto part = store / "big.bin.hawser-part";
    auto content = random_bytes(24u << 20, 9);
    write_file(root / "big.bin", content);
    auto handler = [store](Commands& c) {
        c.stream("upload", [store](Request, IncomingStream in) -> Task<void> {
            (void)co_await receive_file(std::move(in), store, "big.bin");
        });
    };
    {
        Fixture f(handler);
        // Cut the connection once part of the file is on the server's disk.
        auto transfer = std::make_shared<Slot<Result<void>>>();
        f.to_server.send_file("upload", (root / "big.bin").string(),
                              [transfer](Result<void> r) { transfer->set(r); });
        ASSERT_TRUE(eventually([&] {
            std::error_code ec;
            return std::filesystem::file_size(part, ec) > (2u << 20) && !ec;
        }));
        f.to_client.close();
        EXPECT_EQ(transfer->get(30s).error().code, Errc::disconnected);
    }
    auto have = std::filesystem::file_size(part);
    ASSERT_GT(have, 0u);
    ASSERT_LT(have, content.size());
    {
        // A new server on the same directory: the part on disk is all the state there is.
        Fixture f(handler);
        std::atomic<std::uint64_t> first_progress{0};
        StreamOptions o;
        o.on_progress = [&](std::uint64_t n) {
            std::uint64_t zero = 0;
            first_progress.compare_exchange_strong(zero, n);
        };
        auto r = f.to_server.send_file("upload", (root / "big.bin").string(), use_wait, o);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_GE(first_progress.load(), have);  // it started where the part ended
    }
    EXPECT_EQ(read_file(store / "big.bin"), content);
    EXPECT_FALSE(std::filesystem::exists(part));
    std::filesystem::remove_all(root);
}

TEST(Streams, APartThatDiffersFailsTheHashAndIsDiscarded) {
    auto content = random_bytes(3u << 20, 11);
    auto [root, store] =
        stage_part("mismatch", content, random_bytes(1u << 20, 12));  // not its start
    auto results = std::make_shared<Slot<Result<ReceivedFile>>>();
    std::atomic<int> attempt{0};
    Fixture f([&](Commands& c) {
        c.stream("upload", [&, store](Request, IncomingStream in) -> Task<void> {
            auto r = co_await receive_file(std::move(in), store, "f.bin");
            if (++attempt == 1) results->set(r);
        });
    });
    auto r = f.to_server.send_file("upload", (root / "f.bin").string(), use_wait);
    EXPECT_EQ(r.error().code, Errc::hash_mismatch);
    EXPECT_EQ(results->get().error().code, Errc::hash_mismatch);
    EXPECT_FALSE(std::filesystem::exists(store / "f.bin.hawser-part"));
    ASSERT_TRUE(f.to_server.send_file("upload", (root / "f.bin").string(), use_wait));
    EXPECT_EQ(read_file(store / "f.bin"), content);
    std::filesystem::remove_all(root);
}

TEST(Streams, ResumesHashTheirPartsOnHalfTheWorkersAtMost) {
    // Two parts to resume, and both workers (loopback_server has two) held: the first resume's
    // hash waits in the pool, and takes the half the pool gives such hashes.
    auto a = random_bytes(1u << 20, 31), b = random_bytes(1u << 20, 32);
    auto [root, store] = stage_part("resumes", a, a.substr(0, 1000));
    write_file(root / "g.bin", b);
    write_file(store / "g.bin.hawser-part", b.substr(0, 1000));
    HeldWorkers workers;
    Fixture f([&, store](Commands& c) {
        workers.add_to(c);
        c.stream("upload", [store](Request, IncomingStream in) -> Task<void> {
            auto metadata = in.metadata();
            auto name = metadata.read_string().value();
            (void)co_await receive_file(std::move(in), store, name);
        });
    });
    ASSERT_TRUE(workers.hold(f.to_server, 2));
    auto upload = [&](const std::string& name) {
        auto done = std::make_shared<Slot<Result<void>>>();
        StreamOptions o;
        o.metadata << name;
        f.to_server.send_file(
            "upload", (root / name).string(), [done](Result<void> r) { done->set(r); }, o);
        return done;
    };
    auto first = upload("f.bin");
    auto second = upload("g.bin");
    EXPECT_EQ(second->get().error().code, Errc::overloaded);
    workers.release();
    ASSERT_TRUE(first->get());
    EXPECT_EQ(read_file(store / "f.bin"), a);
    // Its part kept: tried again, it resumes.
    ASSERT_TRUE(upload("g.bin")->get());
    EXPECT_EQ(read_file(store / "g.bin"), b);
    std::filesystem::remove_all(root);
}

TEST(Streams, SendersHashResumedPrefixesOnHalfTheWorkersAtMost) {
    // The server sends two files the client has parts of, with both of the server's workers
    // held: the first accepted resume's prefix hash takes the half of the pool long jobs get,
    // and the other is refused. (The client checks its parts on eight workers: it refuses none.)
    auto a = random_bytes(1u << 20, 41), b = random_bytes(1u << 20, 42);
    auto [root, store] = stage_part("send_resumes", a, a.substr(0, 1000));
    write_file(root / "g.bin", b);
    write_file(store / "g.bin.hawser-part", b.substr(0, 1000));
    HeldWorkers workers;
    Server server(loopback_server());
    workers.add_to(server.commands());
    Slot<ConnectionId> joined;
    server.on_connect([&](const Connection& c) { joined.set(c.id()); });
    server.start().value();
    Runtime client_runtime({.io_threads = 1, .worker_threads = 8});
    Client client(client_runtime, client_for(server));
    client.commands().stream("download", [store](Request, IncomingStream in) -> Task<void> {
        auto metadata = in.metadata();
        auto name = metadata.read_string().value();
        (void)co_await receive_file(std::move(in), store, name);
    });
    client.connect().value();
    auto to_client = server.find(joined.get()).value();
    ASSERT_TRUE(workers.hold(client.connection(), 2));
    std::mutex mu;
    std::map<std::string, Result<void>> ended;
    auto send = [&](const std::string& name) {
        StreamOptions o;
        o.metadata << name;
        to_client.send_file(
            "download", (root / name).string(),
            [&, name](Result<void> r) {
                std::lock_guard lock(mu);
                ended.emplace(name, r);
            },
            o);
    };
    auto count = [&] {
        std::lock_guard lock(mu);
        return ended.size();
    };
    send("f.bin");
    send("g.bin");
    ASSERT_TRUE(eventually([&] { return count() == 1; }));
    std::string refused;
    {
        std::lock_guard lock(mu);
        refused = ended.begin()->first;
        EXPECT_EQ(ended.begin()->second.error().code, Errc::overloaded);
    }
    workers.release();
    ASSERT_TRUE(eventually([&] { return count() == 2; }));
    {
        std::lock_guard lock(mu);
        for (auto& [name, r] : ended)
            if (name != refused) {
                EXPECT_TRUE(r) << name << ": " << r.error().message;
            }
        ended.clear();
    }
    send(refused);  // its part was kept: it resumes
    ASSERT_TRUE(eventually([&] { return count() == 1; }));
    EXPECT_TRUE(ended.begin()->second);
    EXPECT_EQ(read_file(store / "f.bin"), a);
    EXPECT_EQ(read_file(store / "g.bin"), b);
    std::filesystem::remove_all(root);
}

TEST(Streams, AContentHashTheSenderKnowsIsCheckedByTheReceiver) {
    auto got = std::make_shared<Slot<Collected>>();
    std::atomic<int> streams{0};
    Fixture f([&](Commands& c) {
        c.stream("store", [&, got](Request, IncomingStream in) -> Task<void> {
            auto slot = ++streams == 1 ? got : std::make_shared<Slot<Collected>>();
            return collect(std::move(in), slot);
        });
    });
    auto content = random_bytes(2 * 1024 * 1024 + 5, 21);
    StreamOptions right;
    right.content_hash = hash_of(content);
    ASSERT_TRUE(f.to_server.send_stream("store", content, use_wait, right));
    auto c = got->get();
    EXPECT_EQ(c.error.code, Errc::ok) << c.error.message;
    EXPECT_EQ(c.content, content);
    // A stated hash that is not the content's: the receiver refuses the content.
    StreamOptions wrong;
    wrong.content_hash = hash_of("something else");
    auto r = f.to_server.send_stream("store", content, use_wait, wrong);
    EXPECT_EQ(r.error().code, Errc::hash_mismatch);
}

TEST(Streams, AFileWithAKnownHashResumesWithoutRereadingItsPrefix) {
    // The server sends and has no worker to hash a prefix with: only a sender that skips the
    // prefix can resume. The client has part of the file already.
    auto content = random_bytes(5u << 20, 22);
    auto have = std::size_t(2u << 20) + 3;
    auto [root, store] = stage_part("known", content, content.substr(0, have));
    auto so = loopback_server();
    so.max_worker_jobs = 0;
    std::atomic<std::uint64_t> first_progress{0};
    // One slot per attempt, each way: [0] without the hash, [1] with it.
    std::vector<std::shared_ptr<Slot<Result<void>>>> sent{std::make_shared<Slot<Result<void>>>(),
                                                          std::make_shared<Slot<Result<void>>>()};
    std::vector<std::shared_ptr<Slot<Result<ReceivedFile>>>> received{
        std::make_shared<Slot<Result<ReceivedFile>>>(),
        std::make_shared<Slot<Result<ReceivedFile>>>()};
    std::atomic<std::size_t> attempt{0};
    auto path = (root / "f.bin").string();
    Fixture f(
        [&](Commands& c) {
            c.console("fetch", [&](const Request& req, std::string_view how) {
                StreamOptions o;
                auto done = sent.at(how == "known");
                if (how == "known") {
                    o.content_hash = hash_of(content);
                    o.on_progress = [&](std::uint64_t n) {
                        std::uint64_t zero = 0;
                        first_progress.compare_exchange_strong(zero, n);
                    };
                }
                req.connection().send_file(
                    "download", path, [done](Result<void> r) { done->set(r); }, o);
                return std::string("started");
            });
        },
        [&](Commands& c) {
            c.stream("download", [&](Request, IncomingStream in) -> Task<void> {
                auto slot = received.at(attempt++);
                slot->set(co_await receive_file(std::move(in), store, "f.bin"));
            });
        },
        so);
    // Without the hash the server must read and hash the prefix, and cannot here.
    ASSERT_TRUE(f.to_server.call("fetch", "unknown", use_wait));
    EXPECT_EQ(sent[0]->get(30s).error().code, Errc::overloaded);
    EXPECT_EQ(received[0]->get(30s).error().code, Errc::overloaded);
    ASSERT_EQ(std::filesystem::file_size(store / "f.bin.hawser-part"), have);
    ASSERT_TRUE(f.to_server.call("fetch", "known", use_wait));
    auto r = sent[1]->get(30s);
    ASSERT_TRUE(r) << r.error().message;
    auto stored = received[1]->get(30s).value();
    EXPECT_EQ(stored.size, content.size());
    ContentHasher whole;
    whole.update(content);
    EXPECT_EQ(stored.hash, whole.digest());  // the whole file's, though only a suffix travelled
    EXPECT_GE(first_progress.load(), have);
    EXPECT_EQ(read_file(store / "f.bin"), content);
    std::filesystem::remove_all(root);
}

TEST(Streams, AHeldVerdictIsTheReceiversToGive) {
    auto root = scratch_dir("verdict");
    auto results = std::make_shared<Slot<Result<ReceivedFile>>>();
    Fixture f([&](Commands& c) {
        c.stream("upload", [root, results](Request, IncomingStream in) -> Task<void> {
            ReceiveFileOptions o;
            o.hold_verdict = true;
            auto r = co_await receive_file(std::move(in), root, "f.bin", use_task, o);
            if (r) r->source.finish(Errc::storage_error, "no room for it");
            results->set(std::move(r));
        });
    });
    auto content = random_bytes(300'000, 21);
    write_file(root / "source.bin", content);
    auto sent = f.to_server.send_file("upload", (root / "source.bin").string(), use_wait);
    ASSERT_FALSE(sent);
    EXPECT_EQ(sent.error().code, Errc::storage_error);
    EXPECT_EQ(sent.error().message, "no room for it");
    auto stored = results->get(30s);
    ASSERT_TRUE(stored) << stored.error().message;
    ContentHasher hash;
    hash.update(content);
    EXPECT_EQ(stored->hash, hash.digest());
    EXPECT_EQ(stored->size, content.size());
    EXPECT_EQ(read_file(root / "f.bin"), content);
    std::filesystem::remove_all(root);
}

TEST(Streams, BlockingOperationsRefuseOnAnIoThread) {
    auto got = std::make_shared<Slot<Errc>>();
    Fixture f([&](Commands& c) {
        c.console("try", [got](const Request& req, std::string_view) {
            got->set(req.connection().send_stream("x", "abc", use_wait).error().code);
            return std::string();
        });
    });
    ASSERT_TRUE(f.to_server.call("try", "", use_wait));
    EXPECT_EQ(got->get(), Errc::would_deadlock);
}

TEST(Streams, ASinkLearnsWhyTheReceiverStopped) {
    Fixture f([&](Commands& c) {
        c.stream("full", [](Request, IncomingStream in) -> Task<void> {
            auto source = in.accept().value();
            (void)co_await source.read();
            source.finish(Errc::storage_error, "disk full");
        });
    });
    auto sink = f.to_server.open_stream("full", use_wait).value();
    Result<void> r;
    for (int i = 0; i < 2000 && r; ++i) r = sink.write(std::string(64 * 1024, 'z'), use_wait);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::storage_error);
    EXPECT_EQ(r.error().message, "disk full");
    EXPECT_EQ(sink.finish(use_wait).error().code, Errc::storage_error);
}

TEST(Streams, OneNameIsReceivedByOneStreamAtATime) {
    auto root = scratch_dir("lock");
    Fixture f([&](Commands& c) {
        c.stream("upload", [root](Request, IncomingStream in) -> Task<void> {
            (void)co_await receive_file(std::move(in), root, "same.bin");
        });
    });
    auto first = f.to_server.open_stream("upload", use_wait).value();
    ASSERT_TRUE(first.write("the first upload", use_wait));
    auto second = f.to_server.send_stream("upload", "the second upload", use_wait);
    EXPECT_EQ(second.error().code, Errc::overloaded);
    ASSERT_TRUE(first.finish(use_wait));
    EXPECT_EQ(read_file(root / "same.bin"), "the first upload");
    std::filesystem::remove_all(root);
}

TEST(Streams, BadStreamLimitsAreRefusedAtStart) {
    auto o = loopback_server();
    o.limits.stream_chunk_bytes = 0;
    EXPECT_EQ(Server(o).start().error().code, Errc::invalid_argument);
    o = loopback_server();
    o.limits.stream_window_bytes = 10;
    EXPECT_EQ(Server(o).start().error().code, Errc::invalid_argument);
    for (std::uint32_t turn : {0u, 1023u, (1u << 20) + 1}) {
        o = loopback_server();
        o.limits.stream_hash_turn_bytes = turn;
        auto started = Server(o).start();
        ASSERT_FALSE(started) << turn;
        EXPECT_EQ(started.error().code, Errc::invalid_argument);
        EXPECT_NE(started.error().message.find("stream_hash_turn_bytes"), std::string::npos);
    }
}

TEST(Streams, DroppingTheSourceCancelsTheStream) {
    std::mutex mu;
    std::vector<IncomingStream> kept;  // the handler's stream outlives the source it gave
    Fixture f([&](Commands& c) {
        c.stream("drop", [&](const Request&, IncomingStream in) {
            auto source = in.accept();
            EXPECT_TRUE(source);
            std::lock_guard l(mu);
            kept.push_back(std::move(in));
        });  // the source goes here
    });
    auto r = f.to_server.send_stream("drop", random_bytes(8u << 20, 21), use_wait);
    EXPECT_EQ(r.error().code, Errc::cancelled);
    std::lock_guard l(mu);
    ASSERT_EQ(kept.size(), 1u);
    EXPECT_NE(kept[0].id(), 0u);  // still says which stream it was
    EXPECT_EQ(kept[0].accept().error().code, Errc::invalid_argument);
}
