#include "read_password.hpp"

#include <termios.h>
#include <unistd.h>

#include <csignal>
#include <iostream>
#include <iterator>

namespace hawser::app {

namespace {

// One line, at most `max` bytes (a password is at most 1 KiB by Cloud's default
// max_password_bytes), so that stdin from /dev/zero or a big file does not fill memory. False
// past the bound.
bool read_line(std::string& out, std::size_t max) {
    for (int c; (c = std::cin.get()) != EOF && c != '\n';) {
        if (out.size() == max) return false;
        out.push_back(char(c));
    }
    return true;
}

// The terminal's settings while echo is off, for a Ctrl-C to put back.
termios t_saved{};
void restore_and_end(int sig) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &t_saved);
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

}  // namespace

Result<std::string> read_password(const char* prompt) {
    constexpr std::size_t max = 4096;
    std::string password;
    if (::isatty(STDIN_FILENO)) {
        std::cerr << prompt << std::flush;
        termios old{};
        bool quiet = ::tcgetattr(STDIN_FILENO, &old) == 0;
        // A signal that ends the program while echo is off puts the terminal back first (one
        // the program ignores stays ignored).
        constexpr int ending[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP};
        void (*was[std::size(ending)])(int) = {};
        if (quiet) {
            termios silent = old;
            silent.c_lflag &= ~tcflag_t(ECHO);
            t_saved = old;
            for (std::size_t i = 0; i < std::size(ending); ++i) {
                was[i] = ::signal(ending[i], restore_and_end);
                if (was[i] == SIG_IGN) ::signal(ending[i], SIG_IGN);
            }
            ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent);
        }
        bool fits = read_line(password, max);
        if (quiet) {
            ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
            for (std::size_t i = 0; i < std::size(ending); ++i) ::signal(ending[i], was[i]);
        }
        std::cerr << '\n';
        if (!fits) return Error{Errc::invalid_argument, "the password is over 4096 bytes"};
    } else if (!read_line(password, max)) {
        return Error{Errc::invalid_argument, "the password is over 4096 bytes"};
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) return Error{Errc::invalid_argument, "no password given"};
    return password;
}

}  // namespace hawser::app
