#include "rpc/key_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace hawser::detail {

namespace {
Error io_error(const std::string& what, const std::string& path) {
    return Error{Errc::invalid_argument, what + " " + path + ": " + std::strerror(errno)};
}
}  // namespace

Result<noise::KeyPair> load_or_create_key(const std::string& data_dir) {
    std::error_code ec;
    std::filesystem::create_directories(data_dir, ec);
    if (ec) return Error{Errc::invalid_argument, "cannot create " + data_dir + ": " + ec.message()};
    std::string path = data_dir + "/server.key";
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        struct stat st {};
        ::fstat(fd, &st);
        char hex[65] = {};
        auto n = ::read(fd, hex, 64);
        ::close(fd);
        if (st.st_mode & (S_IRWXG | S_IRWXO))
            return Error{Errc::invalid_argument, path + " is readable by others; chmod 600 it"};
        auto key = n == 64 ? noise::key_from_hex(std::string_view(hex, 64)) : std::nullopt;
        if (!key)
            return Error{Errc::invalid_argument, path + " does not hold a key (64 hex digits)"};
        return noise::KeyPair::from_private(*key);
    }
    if (errno != ENOENT) return io_error("cannot read", path);
    auto keys = noise::KeyPair::generate();
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return io_error("cannot create", path);
    std::string text = noise::to_hex(keys.private_key) + "\n";
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
              ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) return io_error("cannot write", path);
    spdlog::info("hawser: generated a new server key in {}", path);
    return keys;
}

}  // namespace hawser::detail
