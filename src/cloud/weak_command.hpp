// Registers a member function of a cloud service as a DataFrame command that holds the service
// weakly: the server may outlive the Cloud, and once the service is gone the command answers
// shutting_down. Thread affinity: register before the server starts; the handler runs on the
// connection's IO thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "hawser/commands.hpp"

namespace hawser::cloud::detail {

template <class Service>
void add_weak_command(Commands& commands, std::weak_ptr<Service> service, std::string_view name,
                      void (Service::*handler)(const Request&, DataFrame, Responder<DataFrame>),
                      CommandOptions options = {}) {
    commands.dataframe(
        std::string(name),
        [service = std::move(service), handler](const Request& req, DataFrame arg,
                                                Responder<DataFrame> reply) {
            auto self = service.lock();
            if (!self) return reply.fail(Errc::shutting_down, "the cloud service stopped");
            ((*self).*handler)(req, std::move(arg), std::move(reply));
        },
        options);
}

}  // namespace hawser::cloud::detail
