// hawser-server: a Hawser server with the demo commands of the README tour.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <thread>

#include "bench_commands.hpp"
#include "config.hpp"
#include "dashboard_assets.hpp"
#include "demo_commands.hpp"
#include "hawser/cluster.hpp"
#include "hawser/hawser.hpp"
#include "hawser/zdb/remote_store.hpp"
#include "hawser/zdb/store.hpp"
#include "hawser/zdb/store_service.hpp"
#include "read_password.hpp"
#include "service_manager.hpp"

namespace {

// The cloud's store: this node's own, or (store_endpoint) the one another node serves, reached
// with this node's server key, which that node lists in serve_store_to.
hawser::Result<std::unique_ptr<hawser::zdb::Store>> open_cloud_store(
    const hawser::app::CloudConfig& cloud, const hawser::ServerOptions& server) {
    if (!cloud.remote_store()) return hawser::zdb::Store::open({.path = cloud.store_dir});
    hawser::zdb::RemoteStoreOptions o;
    o.client.endpoints = {cloud.store_endpoint};
    o.client.server_public_key = cloud.store_public_key;
    o.client.client_key_file = server.data_dir + "/server.key";
    o.client.mark = server.mark;
    o.client.reconnect.enabled = true;  // the serving node may restart
    return hawser::zdb::connect_store(std::move(o));
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App cli{"Hawser server"};
    std::string config_path, mark_head, mark_tail, log_level = "info";
    std::vector<std::string> listen;
    std::size_t threads = 0, max_connections = 0;
    bool has_threads = false, has_max_connections = false, print_public_key = false,
         insecure_plaintext = false, reuse_port = false, bench_commands = false, cloud = false;
    std::string data_dir, node_name, add_account;
    std::vector<std::string> cluster_urls, public_endpoints;
    std::string admin_listen;
    cli.add_option("-c,--config", config_path, "TOML configuration file")->check(CLI::ExistingFile);
    cli.add_option("-l,--listen", listen, "address to listen on, e.g. [::]:7100 (repeatable)");
    cli.add_option("-t,--threads", threads, "IO threads (0 = one per core)")
        ->each([&](const std::string&) { has_threads = true; });
    cli.add_option("--max-connections", max_connections,
                   "refuse connections beyond this many (0 = no limit)")
        ->each([&](const std::string&) { has_max_connections = true; });
    cli.add_option("--mark-head", mark_head, "4-byte protocol mark before each frame");
    cli.add_option("--mark-tail", mark_tail, "4-byte protocol mark after each frame");
    cli.add_option("--data-dir", data_dir, "where the server key lives (default hawser-data)");
    cli.add_flag("--reuse-port", reuse_port,
                 "share the port with other hawser-server processes (SO_REUSEPORT); they must "
                 "be one service with one key. Without it, a port in use fails the start");
    cli.add_flag("--bench-commands", bench_commands,
                 "add hawser-bench's commands (any client may make the server broadcast): "
                 "for benchmark servers only");
    cli.add_flag("--cloud", cloud,
                 "accounts, login, sessions and files (docs/cloud.md); every other command then "
                 "needs a login. A [cloud] table in the configuration turns it on too");
    cli.add_option("--add-account", add_account,
                   "create a cloud account (an administrator's, say: [cloud] admins), the "
                   "password from the terminal or stdin, and exit; with the server stopped");
    cli.add_flag("--print-public-key", print_public_key,
                 "print the server's public key (creating it if needed) and exit");
    cli.add_flag("--insecure-plaintext", insecure_plaintext,
                 "no encryption (clients must agree); for benchmarks only");
    cli.add_option("--cluster", cluster_urls,
                   "join a cluster over NATS, e.g. nats://127.0.0.1:4222 (repeatable: several "
                   "NATS servers of one NATS cluster)");
    cli.add_option("--node-name", node_name,
                   "this node's name in the cluster (default <hostname>-<pid>)");
    cli.add_option("--public-endpoint", public_endpoints,
                   "where clients reach this node, host:port (repeatable; default: the listen "
                   "addresses)");
    cli.add_option("--admin", admin_listen,
                   "serve /metrics and the dashboard on this address, e.g. 127.0.0.1:9100 "
                   "(an [admin] table in the configuration does too)");
    cli.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        // --help and --version exit 0; a bad flag is a bad configuration, which exits 2.
        return cli.exit(e) == 0 ? 0 : 2;
    }
    spdlog::set_level(spdlog::level::from_str(log_level));

    hawser::ServerOptions options;
    std::optional<hawser::ClusterOptions> cluster_options;
    std::optional<hawser::app::CloudConfig> cloud_config;
    std::optional<hawser::AdminOptions> admin_options;
    if (!config_path.empty()) {
        auto loaded = hawser::app::load_config(config_path);
        auto cluster = hawser::app::load_cluster_config(config_path);
        auto cloud_loaded = hawser::app::load_cloud_config(config_path);
        auto admin_loaded = hawser::app::load_admin_config(config_path);
        if (!loaded || !cluster || !cloud_loaded || !admin_loaded) {
            spdlog::error("configuration: {}", (!loaded         ? loaded.error()
                                                : !cluster      ? cluster.error()
                                                : !cloud_loaded ? cloud_loaded.error()
                                                                : admin_loaded.error())
                                                   .message);
            return 2;
        }
        admin_options = *admin_loaded;
        options = *loaded;
        cluster_options = *cluster;
        cloud_config = *cloud_loaded;
    }
    if (cloud && !cloud_config) {
        cloud_config.emplace();
        cloud_config->options.secret_key_file.clear();
    }
    if (!cluster_urls.empty()) {
        if (!cluster_options) cluster_options.emplace();
        cluster_options->nats_urls = cluster_urls;
    }
    if (cluster_options) {
        if (!node_name.empty()) cluster_options->node_name = node_name;
        if (!public_endpoints.empty()) cluster_options->public_endpoints = public_endpoints;
        if (auto valid = hawser::Cluster::validate(*cluster_options); !valid) {
            spdlog::error("configuration: {}", valid.error().message);
            return 2;
        }
    } else if (!node_name.empty() || !public_endpoints.empty()) {
        spdlog::error("configuration: --node-name and --public-endpoint need --cluster");
        return 2;
    }
    if (!admin_listen.empty()) {
        if (!admin_options) admin_options.emplace();
        admin_options->listen = admin_listen;
        if (auto valid = hawser::AdminServer::validate(*admin_options); !valid) {
            spdlog::error("configuration: {}", valid.error().message);
            return 2;
        }
    }
    if (!listen.empty()) options.listen = listen;
    if (!data_dir.empty()) options.data_dir = data_dir;
    if (insecure_plaintext) options.transport.insecure_plaintext = true;
    if (reuse_port) options.reuse_port = true;
    if (has_threads) options.io_threads = threads;
    if (has_max_connections) options.max_connections = max_connections;
    if (!mark_head.empty() || !mark_tail.empty()) {
        // One flag alone keeps the other half from the file (or the default).
        const auto& m = options.mark;
        auto mark = hawser::app::parse_mark(
            mark_head.empty() ? std::string(m.head.begin(), m.head.end()) : mark_head,
            mark_tail.empty() ? std::string(m.tail.begin(), m.tail.end()) : mark_tail);
        if (!mark) {
            spdlog::error("{}", mark.error().message);
            return 2;
        }
        options.mark = *mark;
    }
    // The whole configuration is checked before anything touches the disk or the network.
    if (auto valid = hawser::app::validate(options); !valid) {
        spdlog::error("configuration: {}", valid.error().message);
        return 2;
    }
    if (cloud_config && options.transport.insecure_plaintext) {
        spdlog::error(
            "configuration: the cloud service needs encryption (passwords and tokens would "
            "cross the wire in clear), but insecure_plaintext is set");
        return 2;
    }
    if (cloud_config && (cloud_config->remote_store() || !cloud_config->serve_store_to.empty()) &&
        !cluster_options) {
        spdlog::error(
            "configuration: a cloud store shared between nodes needs the cluster (--cluster or "
            "[cluster]): it is how an ended session and a message reach the other nodes");
        return 2;
    }
    if (!add_account.empty() && !cloud_config) {
        spdlog::error("--add-account needs the cloud service: --cloud or a [cloud] table");
        return 2;
    }
    std::string add_password;  // read before signals are blocked: Ctrl-C still stops the prompt
    if (!add_account.empty()) {
        auto password = hawser::app::read_password("password: ");
        if (!password) {
            spdlog::error("{}", password.error().message);
            return 2;
        }
        add_password = std::move(*password);
    }
    if (print_public_key) {
        // stdout carries the key alone, for $(hawser-server --print-public-key); logs go to stderr.
        spdlog::set_default_logger(spdlog::stderr_color_mt("hawser-server"));
        auto key = hawser::Server::load_public_key(options.data_dir);
        if (!key) {
            spdlog::error("{}", key.error().message);
            return 1;
        }
        std::printf("%s\n", key->c_str());
        return 0;
    }

    // Signals are taken by a dedicated thread, which then shuts the server down gracefully.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGHUP);  // reload the limits (update_limits)
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    std::signal(SIGPIPE, SIG_IGN);

    // The cloud's store opens first: it must outlive the server, whose handlers use it.
    std::unique_ptr<hawser::zdb::Store> cloud_store;
    if (cloud_config) {
        auto& files_dir = cloud_config->options.files_dir;
        if (!cloud_config->files) files_dir.clear();
        if (options.data_dir.empty() && cloud_config->remote_store()) {
            spdlog::error(
                "configuration: a node that uses another node's store needs a data_dir: "
                "its server key there is how that node admits it");
            return 2;
        }
        if (options.data_dir.empty() &&
            (cloud_config->store_dir.empty() || cloud_config->options.secret_key_file.empty() ||
             (cloud_config->files && files_dir.empty()))) {
            spdlog::error(
                "configuration: the cloud needs a data_dir, or [cloud] store_dir, "
                "secret_key_file and files_dir (or files = false)");
            return 2;
        }
        if (cloud_config->files && files_dir.empty()) files_dir = options.data_dir + "/cloud-files";
        if (cloud_config->store_dir.empty()) cloud_config->store_dir = options.data_dir + "/cloud";
        if (cloud_config->options.secret_key_file.empty())
            cloud_config->options.secret_key_file = options.data_dir + "/cloud.key";
        auto store = open_cloud_store(*cloud_config, options);
        if (!store) {
            spdlog::error("cannot open the cloud store {}: {}",
                          cloud_config->remote_store() ? cloud_config->store_endpoint
                                                       : cloud_config->store_dir,
                          store.error().message);
            return 1;
        }
        cloud_store = std::move(*store);
    }
    hawser::Server server(options);
    std::unique_ptr<hawser::Cluster> cluster;
    hawser::app::DemoChannels demo_channels;
    if (cluster_options) {
        demo_channels.publish = [&cluster](std::string_view channel, std::string_view line) {
            return cluster->publish(channel, "chat.message", line);
        };
        demo_channels.may_publish =
            [prefixes = cluster_options->client_channel_prefixes](std::string_view channel) {
                for (const auto& prefix : prefixes)
                    if (channel.starts_with(prefix)) return true;
                return false;
            };
    }
    hawser::app::register_demo_commands(server.commands(), std::move(demo_channels));
    std::unique_ptr<hawser::cloud::Cloud> cloud_service;
    if (cloud_config) {
        try {
            cloud_service =
                std::make_unique<hawser::cloud::Cloud>(server, *cloud_store, cloud_config->options);
        } catch (const hawser::Exception& e) {
            spdlog::error("cannot start the cloud service: {}", e.error().message);
            return 1;
        }
    }
    if (!add_account.empty()) {
        auto id = cloud_service->create_account(add_account, add_password);
        if (!id) {
            spdlog::error("cannot create the account {}: {}", add_account, id.error().message);
            return 1;
        }
        std::printf("created %s as user %llu\n", add_account.c_str(),
                    static_cast<unsigned long long>(*id));
        return 0;
    }
    if (cluster_options) cluster = std::make_unique<hawser::Cluster>(server, *cluster_options);
    if (cloud_service && cluster) cloud_service->join(*cluster);
    // The node that keeps the cloud's store serves it to the nodes that use it.
    std::unique_ptr<hawser::zdb::StoreService> store_service;
    if (cloud_config && !cloud_config->serve_store_to.empty()) {
        // A node that uses the store runs all its queries over one connection: its users' data
        // queries, and room for its own look-ups by index (logins, mailboxes).
        hawser::zdb::StoreServiceOptions o;
        o.allowed_keys = cloud_config->serve_store_to;
        o.max_queries_per_connection = cloud_config->options.max_queries + 64;
        o.max_queries = o.max_queries_per_connection * o.allowed_keys.size();
        // A user's query paused by its client is not idle to the store until the cloud gives up.
        o.query_idle_timeout = cloud_config->options.query_time_limit +
                               cloud_config->options.query_idle_timeout + std::chrono::minutes(1);
        store_service = std::make_unique<hawser::zdb::StoreService>(server, *cloud_store, o);
    }
    if (bench_commands)
        hawser::app::register_bench_commands(
            server.commands(),
            [&](std::string_view command, std::string_view text) {
                // Uncompressed: a benchmark's padding would compress to nothing.
                return cluster ? cluster->broadcast(command, text, false)
                               : server.broadcast(command, text, false);
            },
            cluster ? hawser::app::PublishTo([&cluster](std::string_view channel,
                                                        std::string_view command,
                                                        std::string_view text) {
                return cluster->publish(channel, command, text, false);
            })
                    : hawser::app::PublishTo());
    if (auto started = server.start(); !started) {
        spdlog::error("cannot start: {}", started.error().message);
        return 1;
    }
    if (cluster) {
        if (auto joined = cluster->start(); !joined) {
            spdlog::error("cannot join the cluster: {}", joined.error().message);
            server.shutdown();
            return 1;
        }
    }
    // The admin listener starts last: its figures read the server, cluster and store.
    std::unique_ptr<hawser::AdminServer> admin;
    if (admin_options) {
        admin = std::make_unique<hawser::AdminServer>(*admin_options);
        for (const auto& asset : hawser::app::dashboard_assets())
            admin->add_page(std::string(asset.path), std::string(asset.content_type),
                            std::string(asset.body));
        admin->add_metrics(
            [&server](hawser::MetricsText& out) { hawser::write_metrics(out, server.stats()); });
        if (cluster)
            admin->add_metrics(
                [&cluster](hawser::MetricsText& out) { hawser::write_metrics(out, *cluster); });
        if (cloud_store && !cloud_config->remote_store())  // the serving node reports it
            admin->add_metrics([&cloud_store](hawser::MetricsText& out) {
                hawser::zdb::write_metrics(out, *cloud_store);
            });
        if (auto started = admin->start(); !started) {
            spdlog::error("cannot start the admin listener: {}", started.error().message);
            if (cluster) cluster->stop();
            server.shutdown();
            return 1;
        }
    }
    // SIGHUP re-reads the configuration file and applies what may change while running: the
    // connection cap and the admission rules (--max-connections still wins over the file).
    auto reload = [&] {
        if (config_path.empty()) return spdlog::warn("SIGHUP: no --config file to reload");
        hawser::app::notify_reloading();
        auto fresh = hawser::app::load_config(config_path);
        if (fresh && has_max_connections) fresh->max_connections = max_connections;
        auto applied = fresh ? server.update_limits(fresh->max_connections, fresh->admission)
                             : hawser::Result<void>(fresh.error());
        if (applied &&
            (fresh->admission.handshake_timeout != server.options().admission.handshake_timeout ||
             fresh->admission.max_tracked_addresses !=
                 server.options().admission.max_tracked_addresses))
            spdlog::warn(
                "SIGHUP: admission.handshake_timeout_ms and admission.max_tracked_addresses "
                "apply at the next start");
        if (applied)
            spdlog::info(
                "SIGHUP: limits reloaded from {} (max_connections {}; other settings "
                "apply at the next start)",
                config_path, fresh->max_connections);
        else
            spdlog::error("SIGHUP: kept the running limits: {}", applied.error().message);
        hawser::app::notify_ready("serving");
    };
    hawser::app::notify_ready("serving");
    std::thread waiter([&] {
        int sig = 0;
        while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) reload();
        spdlog::info("signal {}: shutting down", sig);
        hawser::app::notify_stopping();
        // Routing stops sending clients here before the server says goodbye to its own.
        if (cluster) cluster->set_draining(true);
        server.shutdown();
    });
    server.wait();
    waiter.join();
    if (admin) admin->stop();      // before what its figures read goes away
    if (cluster) cluster->stop();  // the others drop this node now
    auto stats = server.stats();
    spdlog::info("served {} connections; bye", stats.opened);
    return 0;
}
