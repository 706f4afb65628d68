#include "session_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <vector>

namespace hawser::app {

namespace {
Error failed(const std::string& what, const std::string& path, int err = errno) {
    return {Errc::invalid_argument, what + " " + path + ": " + std::strerror(err)};
}
}  // namespace

std::string default_session_path() {
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg)
        return std::string(xdg) + "/hawser/session";
    const char* home = std::getenv("HOME");
    return std::string(home && *home ? home : ".") + "/.config/hawser/session";
}

Result<std::optional<SavedSession>> read_session(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return std::optional<SavedSession>{};
        return failed("cannot read", path);
    }
    struct stat st {};
    std::string text;
    char buf[512];
    ssize_t n = 0;
    bool ok = ::fstat(fd, &st) == 0;
    while (ok && text.size() < 4096 && (n = ::read(fd, buf, sizeof buf)) > 0)
        text.append(buf, std::size_t(n));
    ::close(fd);
    if (!ok || n < 0) return failed("cannot read", path);
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077))
        return Error{Errc::invalid_argument,
                     path + " is not a private file (chmod 600 it, or log in again)"};
    std::vector<std::string> lines;
    for (std::size_t at = 0; at < text.size();) {
        auto end = text.find('\n', at);
        if (end == std::string::npos) end = text.size();
        lines.push_back(text.substr(at, end - at));
        at = end + 1;
    }
    if (lines.size() != 3 || lines[0].empty() || lines[1].empty() || lines[2].empty())
        return Error{Errc::invalid_argument, path + " is not a hawser-cli session file"};
    SavedSession s{lines[0], lines[1], lines[2]};
    return std::optional<SavedSession>(std::move(s));
}

Result<void> write_session(const std::string& path, const SavedSession& session) {
    // Missing directories are made private; existing ones are left as they are.
    std::filesystem::path made;
    for (const auto& part : std::filesystem::path(path).parent_path()) {
        made /= part;
        if (::mkdir(made.c_str(), 0700) != 0 && errno != EEXIST)
            return failed("cannot create", made.string());
    }
    // O_NOFOLLOW: a link planted under the name must not send the token elsewhere.
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return failed("cannot write", path);
    std::string text = session.endpoint + "\n" + session.server_key + "\n" + session.token + "\n";
    bool ok = ::fchmod(fd, 0600) == 0 &&
              ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    int err = errno;
    ::close(fd);
    if (!ok) return failed("cannot write", path, err);
    return {};
}

}  // namespace hawser::app
