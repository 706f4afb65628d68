// What the cluster tests share: a node (a Server with its Cluster membership, started) on a
// real nats-server, with short intervals so that tests take little time.
#pragma once

#include <gtest/gtest.h>
#include <nats/nats.h>

#include <functional>
#include <string>

#include "cluster/nats_server.hpp"
#include "hawser/cluster.hpp"
#include "integration/support.hpp"

namespace hawser::test {

inline ClusterOptions cluster_options(const NatsServer& nats, std::string name) {
    ClusterOptions c;
    c.nats_urls = {nats.url()};
    c.node_name = std::move(name);
    c.subject_prefix = "test";
    c.report_interval = 100ms;
    c.node_expiry = 1000ms;
    c.reports_heard_per_second = 0;  // every interval: the tests that want fewer say so
    c.nats_reconnect_wait = 50ms;
    return c;
}

// One node: a server and its cluster membership, started; "where" answers its name.
// `adjust` changes its options; `before_start` sets hooks and commands.
struct Node {
    Node(const NatsServer& nats, std::string name,
         const std::function<void(ClusterOptions&)>& adjust = {},
         const std::function<void(Node&)>& before_start = {})
        : server(loopback_server(1)), cluster(server, [&] {
              auto c = cluster_options(nats, std::move(name));
              if (adjust) adjust(c);
              return c;
          }()) {
        server.commands().console(
            "where", [this](const Request&, std::string_view) { return cluster.node_name(); });
        if (before_start) before_start(*this);
        EXPECT_TRUE(server.start());
        EXPECT_TRUE(cluster.start());
    }
    Server server;
    Cluster cluster;
};

inline bool sees(const Cluster& c, std::size_t n) {
    return eventually([&] { return c.nodes().size() == n; });
}

inline void no_redirects(ClusterOptions& c) {
    c.redirect_when_full = false;
}

// A plain NATS connection, for what no node would send.
struct RawNats {
    explicit RawNats(const NatsServer& s) {
        if (natsConnection_ConnectTo(&nc, s.url().c_str()) != NATS_OK)
            throw std::runtime_error("raw NATS connect failed");
    }
    ~RawNats() { natsConnection_Destroy(nc); }
    void publish(const std::string& subject, std::string_view data) {
        ASSERT_EQ(natsConnection_Publish(nc, subject.c_str(), data.data(), int(data.size())),
                  NATS_OK);
        ASSERT_EQ(natsConnection_FlushTimeout(nc, 5000), NATS_OK);
    }
    natsConnection* nc = nullptr;
};

// A load report no node of this process sent: a forged, dead or foreign node.
inline NodeInfo fake_node(std::string name, std::uint64_t capacity, std::string key = {}) {
    NodeInfo n;
    n.name = std::move(name);
    n.endpoints = {"127.0.0.1:1"};  // nothing listens there
    n.public_key = std::move(key);
    n.capacity = capacity;
    n.sequence = 1;
    return n;
}

}  // namespace hawser::test
