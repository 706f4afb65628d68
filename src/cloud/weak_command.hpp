// Registers a member function of a cloud service as a DataFrame command that holds the service
// weakly: the server may outlive the Cloud, and once the service is gone the command answers
// shutting_down. A command that is not public runs only for a signed-in connection, checked
// again here: the gate looked when the call arrived, and a large argument decoded on the
// worker pool reaches the handler later, maybe after a sign-out. Thread affinity: register
// before the server starts; the handler runs on the connection's IO thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "cloud/signed_in.hpp"
#include "hawser/commands.hpp"

namespace hawser::cloud::detail {

template <class Service>
void add_weak_command(Commands& commands, std::weak_ptr<Service> service, std::string_view name,
                      void (Service::*handler)(const Request&, DataFrame, Responder<DataFrame>),
                      CommandOptions options = {}) {
    commands.dataframe(
        std::string(name),
        [service = std::move(service), handler, open = options.public_access](
            const Request& req, DataFrame arg, Responder<DataFrame> reply) {
            auto self = service.lock();
            if (!self) return reply.fail(Errc::shutting_down, "the cloud service stopped");
            if (!open && !req.connection().service_context<SignedIn>().active())
                return reply.fail(Errc::unauthenticated, "log in first");
            ((*self).*handler)(req, std::move(arg), std::move(reply));
        },
        options);
}

}  // namespace hawser::cloud::detail
