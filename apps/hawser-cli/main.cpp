// hawser-cli: calls one command on a Hawser server from the shell and prints the reply.
// Console commands take and print text; DataFrame commands take and print DataFrames as JSON.
// Exit codes: 0 done, 1 the call (or the connection) failed, 2 bad usage. Runs on the main
// thread with blocking calls; the client's IO thread does the networking.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>

#include "cli_reply.hpp"
#include "cloud_data.hpp"
#include "cloud_files.hpp"
#include "cloud_messages.hpp"
#include "frame_json.hpp"
#include "hawser/hawser.hpp"
#include "read_password.hpp"
#include "session_file.hpp"

namespace {

using hawser::app::call_error;
using hawser::app::exit_ok;
using hawser::app::exit_usage;

const char* const examples = R"(
Examples (against ./scripts/run, which listens on port 7100):
  key=$(./build/release/apps/hawser-server/hawser-server --print-public-key)
  hawser-cli --key $key call hello world            # console: prints "hello, world"
  hawser-cli --key $key call-dataframe sum '[1, 2, 39]' # DataFrame: prints [42]
  hawser-cli --key $key call-dataframe echo.frame '[{"name": "ada"}, [1, 2], null]'
  hawser-cli --key $key send log "one-way, no reply"
  hawser-cli --trust-first-use call hello me        # learns the key and prints it on stderr
Against a server with the cloud service (hawser-server --cloud), log in once; later runs against
the same endpoint resume the session (kept, mode 0600, in --session):
  hawser-cli --key $key register ann                # asks for a password (or reads stdin)
  hawser-cli --key $key login ann
  hawser-cli --key $key whoami
  hawser-cli --key $key call hello world            # as ann
  hawser-cli --key $key put photo.jpg trips/photo.jpg  # resumes if cut; progress on a terminal
  hawser-cli --key $key ls trips
  hawser-cli --key $key get trips/photo.jpg copy.jpg
  hawser-cli --key $key rm -r trips
  hawser-cli --key $key message bob "see you at 8"   # kept until bob reads it
  hawser-cli --key $key inbox                        # what waits for you; marks it read
  hawser-cli --key $key listen -n 1                  # what waits, else the next one
  hawser-cli --key $key who bob carol
  hawser-cli --key $key follow bob carol             # online now, then each change
  hawser-cli --key $key join lobby -n 1              # who is in it, then who joins or leaves
  hawser-cli --key $key data insert scores '{"level": 12, "_public": true}'  # prints the id
  hawser-cli --key $key query 'scores@*' '{"level": {"$gte": 10}}' --ordered  # JSON lines
  hawser-cli --key $key logout
Against a cluster (./scripts/cluster), any node is an entry:
  hawser-cli -e 127.0.0.1:7101 --key $key1 call-dataframe hawser.route   # where to go
  hawser-cli -e 127.0.0.1:7101 --key $key1 --cluster call hello world    # go there, call

A DataFrame argument is JSON: an array is the DataFrame's values in order, anything else is a
frame of one value. The reply DataFrame is printed as a JSON array. Failures print
"error: <code>: <message>" on stderr; exit status 0 = done, 1 = the call failed, 2 = bad usage.
)";

int usage_error(const std::string& message) {
    std::fprintf(stderr, "hawser-cli: %s (see hawser-cli --help)\n", message.c_str());
    return exit_usage;
}

// A key file holds the server's public key as hawser-server --print-public-key prints it.
hawser::Result<std::string> read_key_file(const std::string& path) {
    std::ifstream in(path);
    if (!in) return hawser::Error{hawser::Errc::invalid_argument, "cannot read " + path};
    std::string key;
    in >> key;
    if (key.size() != 64 || key.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
        return hawser::Error{hawser::Errc::invalid_argument,
                             path + " does not hold a public key (64 hex digits)"};
    return key;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"hawser-cli: call a command on a Hawser server and print the reply."};
    cli.footer(examples);
    cli.require_subcommand(1);
    cli.fallthrough();  // global options may come after the subcommand too

    std::string endpoint = "localhost:7100", key, key_file;
    bool trust_first_use = false;
    double timeout_seconds = 10;
    cli.add_option("-e,--endpoint", endpoint, "server address, host:port or [v6]:port")
        ->capture_default_str();
    auto* key_opt = cli.add_option("-k,--key", key,
                                   "the server's public key, 64 hex digits "
                                   "(hawser-server --print-public-key)");
    auto* key_file_opt = cli.add_option(
        "--key-file", key_file,
        "a file holding the server's public key as --print-public-key prints it (not "
        "server.key: that is the secret half)");
    auto* tofu_opt = cli.add_flag("--trust-first-use", trust_first_use,
                                  "accept whatever key the server has and print it on stderr");
    bool cluster = false;
    cli.add_flag("--cluster", cluster,
                 "the endpoint is a cluster entry node: go where it routes this client, then "
                 "call there");
    std::string websocket_path;
    cli.add_option("--websocket", websocket_path,
                   "go through a WebSocket upgrade to this path (a server's websocket port, "
                   "e.g. /hawser), as a browser does");
    key_opt->excludes(key_file_opt)->excludes(tofu_opt);
    key_file_opt->excludes(tofu_opt);
    cli.add_option("-t,--timeout", timeout_seconds, "seconds for connecting and for the call")
        ->capture_default_str()
        ->check(CLI::Range(0.001, 86400.0));

    std::string session_file = hawser::app::default_session_path();
    cli.add_option("--session", session_file,
                   "where a cloud login keeps its session token (mode 0600)")
        ->capture_default_str();

    std::string command, argument;
    auto add = [&](const char* name, const char* what, const char* arg_help) {
        auto* sub = cli.add_subcommand(name, what);
        sub->add_option("command", command, "command name")->required();
        sub->add_option("argument", argument, arg_help);
        return sub;
    };
    auto* call = add("call", "call a console command (text in, text out) and print the reply",
                     "the text to send (default empty)");
    auto* call_dataframe =
        add("call-dataframe", "call a DataFrame command (DataFrame in and out, as JSON)",
            "JSON: an array of values, or one value (default: an empty frame)");
    auto* send = add("send", "send a one-way console command (no reply, no error if unknown)",
                     "the text to send (default empty)");
    auto* send_dataframe = add("send-dataframe", "send a one-way DataFrame command",
                               "JSON: an array of values, or one value (default: an empty frame)");

    std::string user;
    auto* register_user =
        cli.add_subcommand("register", "create a cloud account (asks for a password)");
    register_user->add_option("name", user, "the username")->required();
    auto* login = cli.add_subcommand("login", "log in to the cloud service and keep the session");
    login->add_option("name", user, "the username")->required();
    auto* whoami = cli.add_subcommand("whoami", "print who the kept session is logged in as");
    auto* logout = cli.add_subcommand("logout", "end the kept session (on the server too)");

    hawser::app::FileCommand file;
    auto add_file = [&](const char* verb, const char* what) {
        auto* sub = cli.add_subcommand(verb, what);
        sub->callback([&file, verb] { file.verb = verb; });
        return sub;
    };
    auto* put = add_file("put", "upload a file to your cloud files (resumes a cut upload)");
    put->add_option("local", file.first, "the file to upload")->required();
    put->add_option("remote", file.second, "its path in the cloud (default: its name)");
    auto* get = add_file("get", "download a file from your cloud files (resumes a cut one)");
    get->add_option("remote", file.first, "its path in the cloud")->required();
    get->add_option("local", file.second, "where to store it (default: its name, here)");
    get->add_flag("-f,--force", file.force, "replace a local file of that name");
    add_file("ls", "list a directory of your cloud files")
        ->add_option("path", file.first, "the directory (default: the top)");
    auto* rm = add_file("rm", "remove a file or directory from your cloud files");
    rm->add_option("path", file.first, "what to remove")->required();
    rm->add_flag("-r,--recursive", file.recursive, "a directory with everything in it");
    add_file("mkdir", "make a directory (and those above it) in your cloud files")
        ->add_option("path", file.first, "the directory")
        ->required();
    auto* mv = add_file("mv", "move or rename a file or directory in your cloud files");
    mv->add_option("from", file.first, "what to move")->required();
    mv->add_option("to", file.second, "its new path")->required();
    add_file("usage", "print the bytes and entries your cloud files use, and the limits");

    hawser::app::MessageCommand message;
    auto add_message = [&](const char* verb, const char* what) {
        auto* sub = cli.add_subcommand(verb, what);
        sub->callback([&message, verb] { message.verb = verb; });
        return sub;
    };
    add_message("message", "send a message to a user (kept until they read it)")
        ->add_option("to-and-text", message.words, "the user's name, then the text")
        ->required()
        ->expected(2);
    add_message("inbox", "print the messages waiting for you, then mark them read")
        ->add_flag("--keep", message.keep, "leave them in the mailbox");
    auto* listen = add_message("listen", "print waiting messages, then new ones as they come");
    listen->add_option("-n,--count", message.count,
                       "stop once this many were printed (waiting ones count; default: never)");
    listen->add_flag("--keep", message.keep, "leave them in the mailbox");
    add_message("who", "print which of these users are online")
        ->add_option("names", message.words, "usernames")
        ->required();
    auto* follow =
        add_message("follow", "print where these users are online, then each change as it comes");
    follow->add_option("names", message.words, "usernames")->required();
    follow->add_option("-n,--count", message.count,
                       "stop after this many changes (default: never)");
    auto* join = add_message("join", "join rooms: print who is in them, then who joins or leaves");
    join->add_option("rooms", message.words, "room names")->required();
    join->add_option("-n,--count", message.count, "stop after this many changes (default: never)");

    hawser::app::DataCommand data;
    const char* target_help = "COLLECTION (yours), COLLECTION@USER, COLLECTION@* or /DATABASE";
    auto* query = cli.add_subcommand("query", "print the records a filter matches, as JSON lines");
    query->callback([&data] { data.verb = "query"; });
    query->add_option("target", data.target, target_help)->required();
    query->add_option("filter", data.json, "a ZDB filter as JSON (default: every record)");
    query->add_option("-n,--max", data.max_results, "at most this many records");
    query->add_flag("--reverse", data.reverse, "highest ids first");
    query->add_flag("--ordered", data.ordered, "in id order");
    auto* data_cmd = cli.add_subcommand("data", "insert, get, patch or remove one record");
    data_cmd->require_subcommand(1);
    auto add_data = [&](const char* verb, const char* what) {
        auto* sub = data_cmd->add_subcommand(verb, what);
        sub->callback([&data, verb] { data.verb = verb; });
        sub->add_option("target", data.target, target_help)->required();
        return sub;
    };
    add_data("insert", "insert a record; prints its id")
        ->add_option("document", data.json, "the record as a JSON object")
        ->required();
    add_data("get", "print a record as JSON")->add_option("id", data.id, "its id")->required();
    auto* patch = add_data("patch", "set fields of a record (null removes one)");
    patch->add_option("id", data.id, "its id")->required();
    patch->add_option("fields", data.json, "the fields as a JSON object")->required();
    add_data("rm", "remove a record")->add_option("id", data.id, "its id")->required();

    try {
        cli.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return cli.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return cli.exit(e);
    } catch (const CLI::ParseError& e) {
        (void)cli.exit(e);
        return exit_usage;
    }

    // The arguments are checked before anything goes on the network.
    bool dataframe = call_dataframe->parsed() || send_dataframe->parsed();
    hawser::DataFrame frame;
    if (dataframe) {
        auto parsed = hawser::app::frame_from_json(argument);
        if (!parsed) return usage_error("bad JSON argument: " + parsed.error().message);
        frame = std::move(*parsed);
    }
    hawser::Map data_json;
    if (!data.verb.empty()) {
        auto parsed = hawser::app::data_json(data);
        if (!parsed) return usage_error("bad JSON argument: " + parsed.error().message);
        data_json = std::move(*parsed);
    }
    std::string password;
    if (register_user->parsed() || login->parsed()) {
        auto p = hawser::app::read_password("password: ");
        if (!p) return usage_error(p.error().message);
        password = std::move(*p);
    }
    hawser::ClientOptions options;
    options.endpoints = {endpoint};
    options.cluster = cluster;
    if (!websocket_path.empty()) {
        options.websocket.enabled = true;
        options.websocket.path = websocket_path;
    }
    auto timeout = std::chrono::milliseconds(std::llround(timeout_seconds * 1000));
    options.timeouts.connect = timeout;
    if (!key_file.empty()) {
        auto k = read_key_file(key_file);
        if (!k) return usage_error(k.error().message);
        key = *k;
    }
    if (!key.empty())
        options.server_public_key = key;
    else if (trust_first_use)
        options.trust_on_first_use = true;
    else
        return usage_error(
            "give the server's key: --key HEX, --key-file PATH or --trust-first-use");

    // The library logs on stderr only; the key learned on first use is its one warning.
    auto log = spdlog::stderr_logger_mt("hawser-cli");
    log->set_pattern("%v");
    spdlog::set_default_logger(log);
    spdlog::set_level(spdlog::level::warn);

    // Declared before the client, which may still run its hook while it is destroyed.
    std::promise<void> closed;
    std::once_flag closed_once;
    std::error_code no_look;  // a target that cannot be looked at fails the download itself
    if (get->parsed() && !file.force &&
        std::filesystem::exists(hawser::app::download_target(file), no_look)) {
        std::fprintf(stderr, "%s exists: --force replaces it\n",
                     hawser::app::download_target(file).c_str());
        return hawser::app::exit_usage;
    }
    hawser::Client client(options);
    if (get->parsed())
        hawser::app::prepare_download(client.commands(), hawser::app::download_target(file));
    // Every message command takes pushes (a push while it runs is not an unknown command);
    // listen prints them.
    if (!message.verb.empty()) hawser::app::prepare_listen(client.commands());
    if (data.verb == "query") hawser::app::prepare_data(client.commands());
    client.on_disconnect([&](const hawser::Connection&, hawser::CloseReason) {
        std::call_once(closed_once, [&] { closed.set_value(); });
        hawser::app::wake_listener();
    });
    if (auto r = client.connect(); !r) return call_error(r.error());
    auto conn = client.connection();
    hawser::CallOptions call_options{.timeout = timeout};
    // The server's key as its handshake proved it: a kept token goes to that server only.
    auto server_key = conn.peer_static_key().value_or("");
    auto cloud_call = [&](std::string_view name, hawser::DataFrame arg) {
        // Uncompressed: passwords and tokens beside text (docs/security.md).
        return conn.call(name, std::move(arg), hawser::use_wait,
                         hawser::CallOptions{.timeout = timeout, .compress = false});
    };

    if (register_user->parsed() || login->parsed()) {
        hawser::DataFrame arg;
        arg << user << password;
        auto reply = cloud_call(login->parsed() ? "cloud.login" : "cloud.register", arg);
        if (!reply) return call_error(reply.error());
        if (register_user->parsed()) {
            std::cout << "registered " << user << " as user " << reply->get<std::uint64_t>()
                      << '\n';
            return exit_ok;
        }
        auto token = reply->get<std::string>();
        auto id = reply->get<std::uint64_t>();
        auto name = reply->get<std::string>();
        if (auto saved = hawser::app::write_session(session_file, {endpoint, server_key, token});
            !saved)
            return call_error(saved.error());
        std::cout << "logged in as " << name << " (user " << id << "); session kept in "
                  << session_file << '\n';
        return exit_ok;
    }
    // A session kept for this endpoint and this server's key is resumed before anything else;
    // one that no longer resumes is reported, and the command goes on without it.
    auto saved = hawser::app::read_session(session_file);
    if (!saved) std::fprintf(stderr, "hawser-cli: %s\n", saved.error().message.c_str());
    bool resumed = false, ended = false;  // ended: the server says the kept session is over
    std::string resume_error;
    if (saved && *saved && (*saved)->endpoint == endpoint && (*saved)->server_key == server_key) {
        hawser::DataFrame arg;
        arg << (*saved)->token;
        auto r = cloud_call("cloud.resume", arg);
        resumed = bool(r);
        ended = !r && r.error().code == hawser::Errc::unauthenticated;
        if (!r && r.error().code != hawser::Errc::unknown_command) {  // unknown: no cloud there
            resume_error = r.error().message;
            if (!whoami->parsed() && !logout->parsed() && file.verb.empty() &&
                message.verb.empty() && data.verb.empty())
                std::fprintf(stderr, "hawser-cli: the kept session did not resume: %s\n",
                             resume_error.c_str());
        }
    }
    if (logout->parsed() && ended) {
        std::remove(session_file.c_str());  // nothing to end on the server; forget it here
        std::cout << "logged out (the session had already ended)\n";
        return exit_ok;
    }
    if (whoami->parsed() || logout->parsed()) {
        if (!resumed)
            return call_error({hawser::Errc::unauthenticated,
                               "not logged in to " + endpoint +
                                   (resume_error.empty() ? "" : ": " + resume_error)});
        auto r = cloud_call(whoami->parsed() ? "cloud.whoami" : "cloud.logout", {});
        if (!r) return call_error(r.error());
        if (logout->parsed()) {
            std::remove(session_file.c_str());
            std::cout << "logged out\n";
        } else {
            auto id = r->get<std::uint64_t>();
            auto name = r->get<std::string>();
            std::cout << name << " (user " << id << ", session " << r->get<std::uint64_t>()
                      << ")\n";
        }
        return exit_ok;
    }

    if (!file.verb.empty() || !message.verb.empty() || !data.verb.empty()) {
        if (!resumed)
            return call_error({hawser::Errc::unauthenticated,
                               "log in first (hawser-cli login NAME)" +
                                   (resume_error.empty() ? "" : ": " + resume_error)});
        if (!data.verb.empty())
            return hawser::app::run_data_command(conn, data, data_json, timeout);
        if (file.verb.empty()) return hawser::app::run_message_command(conn, message, timeout);
        return hawser::app::run_file_command_where_kept(conn, file, timeout, options,
                                                        (*saved)->token);
    }
    if (call->parsed()) {
        auto reply = conn.call(command, argument, hawser::use_wait, call_options);
        if (!reply) return call_error(reply.error());
        std::cout << *reply << '\n';
    } else if (call_dataframe->parsed()) {
        auto reply = conn.call(command, std::move(frame), hawser::use_wait, call_options);
        if (!reply) return call_error(reply.error());
        auto json = hawser::app::frame_to_json(std::move(*reply));
        if (!json) return call_error(json.error());
        std::cout << *json << '\n';
    } else {
        auto sent = send->parsed() ? conn.send(command, argument) : conn.send(command, frame);
        if (!sent) return call_error(sent.error());
        // close() writes what is queued before closing: wait for it so the message leaves.
        conn.close();
        if (closed.get_future().wait_for(timeout) != std::future_status::ready)
            return call_error({hawser::Errc::timeout, "the message was not written in time"});
    }
    return exit_ok;
}
