// A worker process's command loop (see worker.hpp and control.hpp for the commands).
#include "worker.hpp"

#include <unistd.h>

#include "control.hpp"
#include "driver.hpp"
#include "hawser/runtime.hpp"
#include "process_memory.hpp"

namespace hawser::bench {

namespace {

DriverSetup setup_from(const Json& j) {
    DriverSetup s;
    s.mode = j.at("mode");
    s.endpoints = j.at("endpoints").get<std::vector<std::string>>();
    s.server_key = j.value("key", "");
    s.plaintext = j.value("plaintext", false);
    s.cluster = j.value("cluster", false);
    s.source_address = j.value("source", "");
    s.heartbeat = std::chrono::milliseconds(j.value("heartbeat_ms", 20000));
    s.timeout = std::chrono::milliseconds(j.value("timeout_ms", 30000));
    s.max_opening = j.value("max_opening", std::size_t(512));
    s.sealed = j.value("sealed", false);
    return s;
}

}  // namespace

int run_worker(int control_fd) {
    hawser::raise_file_limit();
    Control control(control_fd);
    std::unique_ptr<Driver> driver;
    for (;;) {
        auto command = control.receive();
        if (!command) return 0;
        const auto cmd = command->is_object() ? command->value("cmd", "") : std::string();
        auto progress = [&](const Json& figures) {
            control.send({{"type", "progress"}, {"figures", figures}});
        };
        using ms = std::chrono::milliseconds;
        Json result = Json::object();
        try {
            if (cmd == "exit") return 0;
            if (cmd == "setup") {
                auto setup = setup_from(*command);
                driver = setup.mode == "raw" ? make_raw_driver(setup) : make_hawser_driver(setup);
            } else if (cmd == "teardown") {
                driver.reset();
            } else if (!driver) {
                result["error"] = "no setup before '" + cmd + "'";
            } else if (cmd == "connect") {
                result = driver->connect(command->at("count"), command->at("rate"), progress);
            } else if (cmd == "hold") {
                result = driver->hold(ms(command->at("ms")), progress);
            } else if (cmd == "ping") {
                result = driver->ping(progress);
            } else if (cmd == "call") {
                result = driver->call(command->at("in_flight"), ms(command->at("ms")), progress);
            } else if (cmd == "storm_arm") {
                driver->storm_arm(command->at("killed"));
            } else if (cmd == "storm") {
                result = driver->storm(command->value("probe_rate", 0.0), progress);
            } else if (cmd == "soak") {
                result = driver->soak(command->at("rate"), ms(command->at("ms")), progress);
            } else if (cmd == "arm") {
                driver->arm(command->value("slow_fraction", 0.0));
            } else if (cmd == "broadcast") {
                result = driver->broadcast(command->at("trigger"), command->at("count"),
                                           command->at("size"), progress);
            } else if (cmd == "channels") {
                ChannelsPlan plan;
                plan.worker = command->at("worker");
                plan.rounds = command->at("rounds");
                plan.size = command->at("size");
                plan.group = command->at("group");
                plan.rate = command->at("rate");
                plan.churn_rate = command->at("churn_rate");
                result = driver->channels(plan, progress);
            } else if (cmd == "churn") {
                result = driver->churn(command->at("rate"), ms(command->at("ms")), progress);
            } else {
                result["error"] = "unknown command '" + cmd + "'";
            }
        } catch (const std::exception& e) {
            result["error"] = cmd + ": " + e.what();
        }
        result["type"] = "result";
        result["rss_kib"] = rss_kib(::getpid());
        if (driver) result["open"] = driver->open_count();
        if (!control.send(result)) return 1;
    }
}

}  // namespace hawser::bench
