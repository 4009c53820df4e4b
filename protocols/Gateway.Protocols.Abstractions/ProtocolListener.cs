using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Gateway.Protocols;

/// <summary>One Kestrel listener a protocol asks for.</summary>
/// <param name="Name">Listener name, unique in the gateway (<c>mqtt</c>, <c>mqtt-tls</c>): tests and health checks look its bound port up by it.</param>
/// <param name="DisplayName">How the start-up line names it (<c>MQTT</c>).</param>
/// <param name="PortKey">The configuration key of its port (<c>Mqtt:Port</c>), named when the port is taken.</param>
/// <param name="Address">Address to bind.</param>
/// <param name="Port">Port to bind; 0 picks a free one.</param>
/// <param name="Enabled">False when configuration turned it off.</param>
/// <param name="Configure">Puts the protocol's connection handler (and TLS, limits) on the listener.</param>
public sealed record ProtocolListener(
    string Name,
    string DisplayName,
    string PortKey,
    IPAddress Address,
    int Port,
    bool Enabled,
    Action<ListenOptions> Configure);
