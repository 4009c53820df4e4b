using System.Net;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// A connection's remote address, carrying the writer MQTTnet sends through. MQTTnet hands the
/// remote endpoint to its connection events; this is how <see cref="PublishAcks"/> reaches the
/// connection's output (to send a run of acknowledgements in one write).
/// </summary>
internal sealed class MqttConnectionEndPoint(IPEndPoint remote, MqttPacketGuard.MqttOutput output) : IPEndPoint(remote.Address, remote.Port)
{
    public MqttPacketGuard.MqttOutput Output { get; } = output;
}
