#include "cloud/files_elsewhere.hpp"

#include "hawser/cloud/cloud.hpp"
#include "hawser/streams.hpp"

namespace hawser::cloud::detail {

DataFrame files_at(bool here, const std::string& endpoint, const std::string& public_key) {
    Map at;
    at.insert_or_assign("here", Value(here));
    if (!here) {
        at.insert_or_assign("endpoint", Value(endpoint));
        at.insert_or_assign("public_key", Value(public_key));
    }
    DataFrame out;
    out << Value(std::move(at));
    return out;
}

void add_files_elsewhere(Commands& commands, const std::string& endpoint,
                         const std::string& public_key) {
    commands.dataframe(std::string(Cloud::files_at_command),
                       [answer = files_at(false, endpoint, public_key)](
                           const Request&, DataFrame&) { return answer; });
    auto why = "files are kept by the node at " + endpoint + " (cloud.files_at)";
    for (auto name :
         {Cloud::get_command, Cloud::list_command, Cloud::stat_command, Cloud::mkdir_command,
          Cloud::move_command, Cloud::remove_command, Cloud::usage_command})
        commands.dataframe(std::string(name),
                           [why](const Request&, DataFrame, Responder<DataFrame> reply) {
                               reply.fail(Errc::not_allowed, why);
                           });
    commands.stream(std::string(Cloud::put_stream), [why](const Request&, IncomingStream in) {
        in.reject(Errc::not_allowed, why);
    });
}

}  // namespace hawser::cloud::detail
