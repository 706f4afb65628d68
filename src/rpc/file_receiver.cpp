// receive_file (files.hpp): one incoming stream stored as a file under a root, through a part
// file that is resumed from its size and renamed once the content's hash matched.
// Ownership: a FileReceiver is owned by the read in flight (its callback) and dies with the
// last one. Thread affinity: the connection's loop; the prefix hash runs on a worker.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>
#include <vector>

#include "hawser/files.hpp"
#include "rpc/conn.hpp"
#include "rpc/stream_state.hpp"

namespace hawser::detail {

namespace {

constexpr std::string_view part_suffix = ".hawser-part";

Error storage(const std::string& what, int err) {
    return Error{Errc::storage_error, what + ": " + std::strerror(err)};
}

class FileReceiver : public std::enable_shared_from_this<FileReceiver> {
  public:
    using Done = std::function<void(Result<ReceivedFile>)>;
    FileReceiver(int fd, std::filesystem::path target, std::filesystem::path part,
                 bool hold_verdict, Done done)
        : fd_(fd),
          target_(std::move(target)),
          part_(std::move(part)),
          hold_verdict_(hold_verdict),
          done_(std::move(done)) {}
    ~FileReceiver() {
        if (fd_ >= 0) ::close(fd_);
    }

    void fail(Error e) { finish(std::move(e)); }

    void start(StreamSource source) {
        source_ = std::move(source);
        offset_ = source_.offset();
        next();
    }

  private:
    void next() {
        source_.read([self = shared_from_this()](Result<std::string> chunk) {
            self->on_chunk(std::move(chunk));
        });
    }

    void on_chunk(Result<std::string> chunk) {
        if (!chunk) {
            // A part that does not match its sender's content is of no use to a resume.
            if (chunk.error().code == Errc::hash_mismatch ||
                chunk.error().code == Errc::size_mismatch)
                ::unlink(part_.c_str());
            return finish(chunk.error());
        }
        if (chunk->empty()) return store();
        for (std::size_t done = 0; done < chunk->size();) {
            auto n =
                ::pwrite(fd_, chunk->data() + done, chunk->size() - done, off_t(offset_ + done));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                auto e = storage("writing " + part_.string(), errno);
                source_.finish(Errc::storage_error, "the receiver could not write the file");
                return finish(e);
            }
            done += std::size_t(n);
        }
        offset_ += chunk->size();
        next();
    }

    // The read callback, on the loop: the table still holds the verified hash of the end.
    void store() {
        std::optional<std::array<std::uint8_t, 32>> hash;
        const auto& ref = StreamAccess::ref(source_);
        ref->on_loop([&, id = ref->id()](StreamTable& t) { hash = t.content_hash(id); });
        if (!hash) return finish(Error{Errc::disconnected, "the connection is closed"});
        if (::rename(part_.c_str(), target_.c_str()) != 0) {
            auto e = storage("renaming " + part_.string(), errno);
            source_.finish(Errc::storage_error, "the receiver could not store the file");
            return finish(e);
        }
        ReceivedFile stored{offset_, *hash, {}};
        if (hold_verdict_)
            stored.source = std::move(source_);
        else
            source_.finish(Errc::ok);
        finish(std::move(stored));
    }

    void finish(Result<ReceivedFile> r) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
        source_ = {};
        if (auto done = std::exchange(done_, nullptr)) done(std::move(r));
    }

    int fd_;
    std::filesystem::path target_, part_;
    bool hold_verdict_;
    Done done_;
    StreamSource source_;
    std::uint64_t offset_ = 0;
};

// Hashes the first `size` bytes of the file open as `fd`.
Result<ContentHasher> hash_prefix(int fd, std::uint64_t size) {
    ContentHasher hash;
    std::vector<std::uint8_t> block(256 * 1024);
    for (std::uint64_t at = 0; at < size;) {
        auto want = std::size_t(std::min<std::uint64_t>(block.size(), size - at));
        auto n = ::pread(fd, block.data(), want, off_t(at));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return Error{Errc::storage_error, "reading the partial file failed"};
        hash.update(std::span(block.data(), std::size_t(n)));
        at += std::size_t(n);
    }
    return hash;
}

}  // namespace

void start_receive_file(IncomingStream stream, const std::filesystem::path& root,
                        const std::string& name, const ReceiveFileOptions& options,
                        std::function<void(Result<ReceivedFile>)> done) {
    auto refuse = [&](Error e) {
        stream.reject(e.code, e.message);
        done(std::move(e));
    };
    // The part file's name is the last segment plus the suffix: it must fit NAME_MAX too.
    auto limits = options.limits;
    limits.max_component_bytes = std::min(limits.max_component_bytes, 255 - part_suffix.size());
    auto normal = normalise_relative_path(name, limits);
    if (!normal) return refuse(normal.error());
    for (auto at = normal->find(part_suffix); at != std::string::npos;
         at = normal->find(part_suffix, at + 1)) {
        auto end = at + part_suffix.size();
        if (end == normal->size() || (*normal)[end] == '/')  // a segment ending in the suffix
            return refuse(Error{
                Errc::invalid_argument,
                "path: names ending in " + std::string(part_suffix) + " are the receiver's own"});
    }
    auto target = root / *normal;
    auto part = target;
    part += part_suffix;
    std::error_code ec;
    std::filesystem::create_directories(target.parent_path(), ec);
    if (ec)
        return refuse(Error{Errc::storage_error,
                            "creating " + target.parent_path().string() + ": " + ec.message()});
    int fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) return refuse(storage("opening " + part.string(), errno));
    // One receiver per part file: two uploads of one name at once would write into each other.
    // The lock must be on the part that is still there: another receiver may have renamed it
    // (stored) or unlinked it (mismatch) between this open and the lock.
    struct stat st {
    }, named{};
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0 || ::fstat(fd, &st) != 0 ||
        ::lstat(part.c_str(), &named) != 0 || st.st_ino != named.st_ino ||
        st.st_dev != named.st_dev || st.st_nlink == 0) {
        ::close(fd);
        return refuse(Error{Errc::overloaded, "'" + *normal + "' is being received already"});
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        return refuse(Error{Errc::storage_error, "'" + part.string() + "' is not a file"});
    }
    std::uint64_t have = std::uint64_t(st.st_size);
    if (have > 0 &&
        (!options.resume || !stream.resumable() || (stream.size() && have > *stream.size()))) {
        if (::ftruncate(fd, 0) != 0) {
            ::close(fd);
            return refuse(storage("truncating " + part.string(), errno));
        }
        have = 0;
    }
    auto receiver =
        std::make_shared<FileReceiver>(fd, target, part, options.hold_verdict, std::move(done));
    if (have == 0) {
        auto source = stream.accept();
        if (!source) return receiver->fail(source.error());
        return receiver->start(std::move(*source));
    }
    // The bytes already here are hashed on a worker: the end's hash covers the whole file.
    const auto& ref = StreamAccess::ref(stream);
    auto conn = ref ? ref->conn().lock() : nullptr;
    if (!conn) return receiver->fail(Error{Errc::disconnected, "the connection is closed"});
    auto shared = std::make_shared<IncomingStream>(std::move(stream));
    // A part is read whole (up to a quota's size, seconds of a worker): a long job, of which
    // the pool runs half its threads' worth at most, so that resumes peers open and drop in a
    // loop cannot hold every worker with every other job behind them. Past that a resume is
    // refused for now.
    auto& workers = conn->host().runtime.workers();
    if (!workers.try_start_long_job()) {
        shared->reject(Errc::overloaded, "too many resumed files are being checked; try again");
        return receiver->fail(Error{Errc::overloaded, "too many resumed files are being checked"});
    }
    // The job holds the connection and hands it back to its loop, where the result is used
    // and the application's callback runs.
    bool posted = workers.try_post(0, [conn, shared, receiver, fd, have, &workers]() mutable {
        auto hash = [&] {
            WorkerPool::LongJobPlace place{workers};
            return hash_prefix(fd, have);
        }();
        auto& loop = conn->loop();
        loop.post([conn = std::move(conn), shared, receiver, hash = std::move(hash),
                   have]() mutable {
            if (!hash) {
                shared->reject(Errc::storage_error, "the receiver could not read its part file");
                return receiver->fail(hash.error());
            }
            auto source = shared->accept(have, &*hash);
            if (!source) return receiver->fail(source.error());
            receiver->start(std::move(*source));
        });
    });
    if (!posted) {
        workers.end_long_job();
        shared->reject(Errc::overloaded, "the receiver's worker pool is full");
        receiver->fail(Error{Errc::overloaded, "the worker pool is full"});
    }
}

}  // namespace hawser::detail
