// The feeds of outgoing big streams (see stream_feed.hpp).
#include "rpc/stream_feed.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace hawser::detail {

Result<void> MemoryFeed::fill(std::uint64_t position, std::span<std::uint8_t> into) {
    std::memcpy(into.data(), content_.data() + position, into.size());
    return {};
}

Result<std::shared_ptr<FileFeed>> FileFeed::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return Error{errno == ENOENT ? Errc::not_found : Errc::storage_error,
                     "cannot open '" + path + "': " + std::strerror(errno)};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return Error{Errc::invalid_argument, "'" + path + "' is not a regular file"};
    }
    return std::make_shared<FileFeed>(fd, std::uint64_t(st.st_size), path);
}

FileFeed::~FileFeed() {
    ::close(fd_);
}

Result<void> FileFeed::fill(std::uint64_t position, std::span<std::uint8_t> into) {
    std::size_t done = 0;
    while (done < into.size()) {
        auto n = ::pread(fd_, into.data() + done, into.size() - done, off_t(position + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::memset(into.data() + done, 0, into.size() - done);
            return Error{Errc::storage_error,
                         "reading '" + path_ + "' failed: " +
                             (n == 0 ? std::string("the file shrank") : std::strerror(errno))};
        }
        done += std::size_t(n);
    }
    return {};
}

void SinkFeed::write(std::string bytes, Done done, std::uint64_t position) {
    base_ = position;
    pending_ = std::move(bytes);
    done_ = std::move(done);
    if (pending_.empty()) sent(position);  // nothing to wait for
}

Result<void> SinkFeed::fill(std::uint64_t position, std::span<std::uint8_t> into) {
    std::memcpy(into.data(), pending_.data() + (position - base_), into.size());
    return {};
}

void SinkFeed::sent(std::uint64_t position) {
    if (!done_ || position != base_ + pending_.size()) return;
    base_ = position;
    std::string().swap(pending_);  // the memory follows what is unsent
    completed_ = std::exchange(done_, nullptr);
}

}  // namespace hawser::detail
