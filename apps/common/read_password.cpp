#include "read_password.hpp"

#include <termios.h>
#include <unistd.h>

#include <iostream>

namespace hawser::app {

Result<std::string> read_password(const char* prompt) {
    std::string password;
    if (::isatty(STDIN_FILENO)) {
        std::cerr << prompt << std::flush;
        termios old{};
        bool quiet = ::tcgetattr(STDIN_FILENO, &old) == 0;
        if (quiet) {
            termios silent = old;
            silent.c_lflag &= ~tcflag_t(ECHO);
            ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &silent);
        }
        std::getline(std::cin, password);
        if (quiet) ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        std::cerr << '\n';
    } else {
        std::getline(std::cin, password);
    }
    if (!password.empty() && password.back() == '\r') password.pop_back();
    if (password.empty()) return Error{Errc::invalid_argument, "no password given"};
    return password;
}

}  // namespace hawser::app
