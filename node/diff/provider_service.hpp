// The test provider inside the node: the negotiation core driven by Asio, its expiry timer,
// and the two test ports (BitTorrent-looking and neutral) whose flows it authorises.
//
// Control messages (negotiate, collect, cancel) arrive through the node's dispatcher; replies
// and queue updates go out on the agent's control connection, found by its id. A test port
// flow is accepted only with a live token of a granted test (proto::negotiation::provider).
// When a test completes, the provider analyses both sides' measurements too and stores the
// record, so a person serving tests sees what their peers' paths did.
//
// Thread-safety: everything on the executor given to open(). Not copyable or movable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "node/asio.hpp"
#include "node/control/connection.hpp"
#include "node/control/dispatcher.hpp"
#include "node/flow/test_port_listener.hpp"
#include "node/results_store.hpp"
#include "tests_proto/negotiation/provider.hpp"

namespace glasnode::node {

struct provider_service_options {
    asio::ip::address bind;
    std::uint16_t bt_port = 6881;
    std::uint16_t neutral_port = 9775;
    proto::negotiation::provider_options negotiation;
};

class provider_service {
public:
    // Binds both test ports (a taken port is an error naming it). `store` may be null.
    static result<std::unique_ptr<provider_service>> open(asio::any_io_executor ex,
                                                          provider_service_options options,
                                                          random_source& rng, results_store* store);
    provider_service(const provider_service&) = delete;
    provider_service& operator=(const provider_service&) = delete;
    ~provider_service();

    // Registers the negotiation message handlers.
    void serve(dispatcher& routes);
    // The control connection is gone: its queued or running test ends.
    void session_closed(std::uint64_t connection_id);
    void stop();

    tcp::endpoint bt_endpoint() const;
    tcp::endpoint neutral_endpoint() const;

private:
    struct state;
    explicit provider_service(std::shared_ptr<state> s);
    std::shared_ptr<state> m;
};

} // namespace glasnode::node
