// Tells systemd (a Type=notify unit, packaging/hawser.service) when the server is ready,
// reloading or stopping, through libsystemd's sd_notify. Without systemd ($NOTIFY_SOCKET unset)
// each call does nothing. Any thread.
#pragma once

#include <string_view>

namespace hawser::app {

void notify_ready(std::string_view status);
void notify_reloading();
void notify_stopping();

}  // namespace hawser::app
