// The cluster's metrics (write_metrics in hawser/cluster.hpp). Runs on the scraping thread;
// Cluster::stats() and nodes() are safe from any thread.
#include "hawser/cluster.hpp"

namespace hawser {

void write_metrics(MetricsText& out, const Cluster& cluster) {
    auto s = cluster.stats();
    auto counter = [&](std::string_view name, std::string_view help, std::uint64_t value) {
        out.counter(name, help, double(value));
    };
    counter("hawser_cluster_reports_sent_total", "Load reports this node sent", s.reports_sent);
    counter("hawser_cluster_reports_received_total", "Load reports received", s.reports_received);
    counter("hawser_cluster_broadcasts_sent_total", "Broadcasts published", s.broadcasts_sent);
    counter("hawser_cluster_broadcasts_received_total", "Broadcasts received",
            s.broadcasts_received);
    counter("hawser_cluster_dropped_messages_total",
            "Cluster messages dropped: undecodable, misnamed or refused", s.dropped_messages);
    counter("hawser_cluster_routes_answered_total", "Route requests answered", s.routes_answered);
    counter("hawser_cluster_nats_disconnects_total", "Times NATS went away", s.nats_disconnects);
    counter("hawser_cluster_nats_reconnects_total", "Times NATS came back", s.nats_reconnects);
    counter("hawser_cluster_nats_channel_disconnects_total",
            "Times the channel connection to NATS was lost (NATS away, or not reading)",
            s.nats_channel_disconnects);
    counter("hawser_cluster_redirects_total", "New connections sent to another node", s.redirects);
    counter("hawser_cluster_remote_requests_sent_total", "Requests to connections on other nodes",
            s.remote_requests_sent);
    counter("hawser_cluster_remote_requests_served_total",
            "Requests from other nodes to this node's connections", s.remote_requests_served);
    counter("hawser_cluster_publications_sent_total", "Channel publications sent",
            s.publications_sent);
    counter("hawser_cluster_publications_received_total", "Channel publications received",
            s.publications_received);
    counter("hawser_cluster_deliveries_total", "Publications handed to local subscribers",
            s.deliveries);
    counter("hawser_cluster_deliveries_skipped_total",
            "Publications skipped: the subscriber was over its send soft limit",
            s.deliveries_skipped);
    out.gauge("hawser_cluster_channel_subscriptions", "NATS subscriptions held for channels",
              double(s.channel_subscriptions));
    counter("hawser_cluster_interest_retries_total",
            "Channel subscriptions NATS could not take then, tried again", s.interest_retries);
    counter("hawser_cluster_slow_consumer_events_total",
            "Messages NATS dropped because this node fell behind", s.slow_consumer_events);
    out.gauge("hawser_cluster_publish_queue_bytes", "Messages for NATS not yet written",
              double(s.publish_queue_bytes));
    counter("hawser_cluster_publishes_lost_total",
            "Messages for NATS that nats.c refused (connection lost, over max_payload) or still "
            "queued at stop",
            s.publishes_lost);

    auto nodes = cluster.nodes();
    out.gauge("hawser_cluster_nodes", "Nodes this node knows, itself included",
              double(nodes.size()));
    for (const auto& n : nodes)
        out.gauge("hawser_cluster_node_connections", "Connections open on each node",
                  double(n.connections), {{"node", n.name}});
    for (const auto& n : nodes)
        out.gauge("hawser_cluster_node_capacity", "Connections each node takes at most",
                  double(n.capacity), {{"node", n.name}});
    for (const auto& n : nodes)
        out.gauge("hawser_cluster_node_cpu", "Cores busy with each node's process", n.cpu,
                  {{"node", n.name}});
    for (const auto& n : nodes)
        out.gauge("hawser_cluster_node_memory_bytes", "Each node's resident memory",
                  double(n.memory_bytes), {{"node", n.name}});
    for (const auto& n : nodes)
        out.gauge("hawser_cluster_node_handshakes_per_second", "Each node's handshake rate",
                  n.handshakes_per_second, {{"node", n.name}});
    for (const auto& n : nodes)
        out.gauge("hawser_cluster_node_draining", "1 when the node is draining", n.draining ? 1 : 0,
                  {{"node", n.name}});
}

}  // namespace hawser
