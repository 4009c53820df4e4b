using Gateway.Protocols;
using Gateway.Protocols.Mqtt;

namespace Gateway.Host;

/// <summary>
/// The protocols the gateway speaks. Adding one is its project under <c>protocols/</c> and one
/// entry here: the host registers its services, opens its listeners, maps its WebSocket paths,
/// validates its options and runs its health check without naming it anywhere else.
/// </summary>
internal static class GatewayProtocols
{
    public static readonly IReadOnlyList<IGatewayProtocol> All = [new MqttProtocol()];
}
