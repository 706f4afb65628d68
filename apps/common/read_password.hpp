// Reading a password for the command-line tools (hawser-cli's login, hawser-server's
// --add-account). Plain function: the main thread.
#pragma once

#include <string>

#include "hawser/error.hpp"

namespace hawser::app {

// A password from the terminal with echo off (prompted on stderr), or the first line of stdin
// when it is not a terminal.
Result<std::string> read_password(const char* prompt);

}  // namespace hawser::app
