using System.Collections;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Lets one MQTT connection have many QoS 1/2 publishes waiting for the disk at once. MQTTnet
/// handles a connection's packets one at a time and queues the PUBACK/PUBREC when the publish
/// interceptor returns; waiting for the commit there would let each connection put one message
/// into each group commit. Instead the interceptor routes (in arrival order) and records the
/// commit here, and the outbound interceptor holds that acknowledgement until the commit is
/// done. MQTTnet sends a connection's packets one at a time too, so acknowledgements still leave
/// in publish order (MQTT-4.6.0-2) and none leaves before its message is on disk.
/// </summary>
internal sealed class PublishAcks
{
    // Bounded by the client's own in-flight window (Receive Maximum): it waits for these acks.
    private readonly ConcurrentQueue<(ushort PacketId, Task Committed)> _pending = new();
    private readonly MqttPacketGuard.MqttOutput? _output;
    private ushort _current;
    private long _released; // publishes whose interceptor has returned: MQTTnet queues their acks next
    private long _taken;    // acknowledgements the send loop has taken

    private PublishAcks(MqttPacketGuard.MqttOutput? output) => _output = output;

    /// <summary>A fresh instance per connection: a persistent session outlives its connections.</summary>
    public static Task OnConnectedAsync(ClientConnectedEventArgs e)
    {
        e.SessionItems[typeof(PublishAcks)] = new PublishAcks((e.RemoteEndPoint as MqttConnectionEndPoint)?.Output);
        return Task.CompletedTask;
    }

    /// <summary>Inbound interceptor, on the connection's receive loop: remembers the packet id
    /// of the QoS 1/2 publish MQTTnet is about to hand to the publish interceptor.</summary>
    public static Task OnInboundPacketAsync(InterceptingPacketEventArgs e)
    {
        if (e.Packet is MqttPublishPacket { QualityOfServiceLevel: > MqttQualityOfServiceLevel.AtMostOnce } publish &&
            e.SessionItems[typeof(PublishAcks)] is PublishAcks acks)
        {
            acks._current = publish.PacketIdentifier;
        }

        return Task.CompletedTask;
    }

    /// <summary>
    /// Publish interceptor: the acks of the connection this publish arrived on, with its packet
    /// id, or null (a will message, an injected message) when the caller must wait itself.
    /// </summary>
    public static PublishAcks? Take(IDictionary sessionItems, out ushort packetId)
    {
        if (sessionItems[typeof(PublishAcks)] is PublishAcks { _current: > 0 } acks)
        {
            packetId = acks._current;
            acks._current = 0;
            return acks;
        }

        packetId = 0;
        return null;
    }

    public void Add(ushort packetId, Task committed) => _pending.Enqueue((packetId, committed));

    /// <summary>The publish interceptor is returning for the last publish added: its
    /// acknowledgement is about to be queued for the send loop.</summary>
    public void Released() => Interlocked.Increment(ref _released);

    /// <summary>Outbound interceptor, on the connection's send loop (one reader): the commit
    /// the acknowledgement for <paramref name="packetId"/> must wait for, if any.</summary>
    public static bool TryTakeCommit(IDictionary sessionItems, ushort packetId, [NotNullWhen(true)] out PublishAcks? acks, [NotNullWhen(true)] out Task? committed)
    {
        if (sessionItems[typeof(PublishAcks)] is PublishAcks found &&
            found._pending.TryPeek(out var head) && head.PacketId == packetId &&
            found._pending.TryDequeue(out head))
        {
            found._taken++;
            acks = found;
            committed = head.Committed;
            return true;
        }

        acks = null;
        committed = null;
        return false;
    }

    /// <summary>
    /// On the send loop, once the acknowledgement just taken may go: when the next one is
    /// committed and already on its way, this one is flushed with it (one socket write for the
    /// run of acknowledgements a group commit releases, not one each).
    /// </summary>
    public void Sending()
    {
        if (_output is not null && Interlocked.Read(ref _released) > _taken &&
            _pending.TryPeek(out var next) && next.Committed.IsCompletedSuccessfully)
        {
            _output.FlushWithNext();
        }
    }
}
