using System.Net;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;

namespace Gateway.Uplinks.Mqtt;

/// <summary>Takes the broker's acknowledgements of the uplink's own publishes.</summary>
internal interface IPublishAcknowledgements
{
    /// <summary>False when the PUBACK is not for one of its publishes.</summary>
    bool TryComplete(MqttPubAckPacket acknowledgement);
}

/// <summary>
/// The uplink's MQTTnet channel adapter: MQTTnet's own, except that acknowledgements of the
/// uplink's publishes go to its link (<see cref="MqttCloudLink"/>) on the read loop, without passing
/// through the client's dispatcher (a task and a lock per publish, and a thread-pool hop per
/// PUBACK). Everything else (CONNACK, SUBACK, PINGRESP, downlink publishes) reaches the client.
/// </summary>
internal sealed class UplinkChannelAdapter(IMqttChannelAdapter inner) : IMqttChannelAdapter
{
    private IPublishAcknowledgements? _acknowledgements;

    public IPublishAcknowledgements? Acknowledgements
    {
        get => Volatile.Read(ref _acknowledgements);
        set => Volatile.Write(ref _acknowledgements, value);
    }

    public long BytesReceived => inner.BytesReceived;

    public long BytesSent => inner.BytesSent;

    public X509Certificate2 ClientCertificate => inner.ClientCertificate;

    public EndPoint RemoteEndPoint => inner.RemoteEndPoint;

    public EndPoint LocalEndPoint => inner.LocalEndPoint;

    public bool IsSecureConnection => inner.IsSecureConnection;

    public MqttPacketFormatterAdapter PacketFormatterAdapter => inner.PacketFormatterAdapter;

    public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);

    public Task DisconnectAsync(CancellationToken cancellationToken) => inner.DisconnectAsync(cancellationToken);

    public async Task<MqttPacket> ReceivePacketAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var packet = await inner.ReceivePacketAsync(cancellationToken);
            if (packet is MqttPubAckPacket acknowledgement && Acknowledgements is { } acknowledgements && acknowledgements.TryComplete(acknowledgement))
            {
                continue;
            }

            return packet;
        }
    }

    public void ResetStatistics() => inner.ResetStatistics();

    public Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken) => inner.SendPacketAsync(packet, cancellationToken);

    public void Dispose() => inner.Dispose();
}
