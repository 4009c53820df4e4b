using System.Diagnostics.Metrics;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// The MQTT endpoint in System.Diagnostics.Metrics (meter <c>Gateway.Mqtt</c>), what mosquitto
/// reports under <c>$SYS/broker</c>: clients connected, messages taken from publishers (and
/// refused), sent to subscribers, and dropped for a session (its queue over
/// <c>Mqtt:MaxPendingMessagesPerClient</c>, or the memory budget full). The adapter counts; these read the counts when asked.
/// </summary>
internal sealed class MqttMetrics : IDisposable
{
    public const string MeterName = "Gateway.Mqtt";

    private readonly Meter _meter;

    public MqttMetrics(IMeterFactory meters, MqttAdapter adapter)
    {
        _meter = meters.Create(MeterName);
        _meter.CreateObservableUpDownCounter("gateway.mqtt.clients", () => adapter.ConnectedClients, "{client}", "MQTT clients connected");
        _meter.CreateObservableCounter("gateway.mqtt.messages.received", () => adapter.Counters.Received, "{message}", "PUBLISH packets taken from clients");
        _meter.CreateObservableCounter("gateway.mqtt.messages.refused", () => adapter.Counters.Refused, "{message}", "publishes not taken: a full reject-publish queue, too little disk, a store failure, a full memory budget (QoS 1/2; MQTT 5 gets the reason, 3.1.1 loses the connection)");
        _meter.CreateObservableCounter("gateway.mqtt.messages.sent", () => adapter.Counters.Sent, "{message}", "PUBLISH packets sent to subscribers");
        _meter.CreateObservableCounter("gateway.mqtt.messages.dropped", () => Dropped(adapter.Counters), "{message}", "messages a session did not get: session-queue-full, the oldest dropped from a queue over Mqtt:MaxPendingMessagesPerClient; memory-budget, not queued for an offline or lagging session while the memory budget was full");
        _meter.CreateObservableUpDownCounter("gateway.mqtt.clients.behind", () => adapter.ClientsBehind, "{client}", "connected subscribers left behind: publishers no longer wait for them until they catch up");
        _meter.CreateObservableCounter("gateway.mqtt.packets.refused", adapter.Counters.PacketsRefused, "{packet}", "packets refused before MQTTnet parsed them, by reason (packet-too-large, malformed, topic-name-invalid, topic-alias-invalid, protocol-error); the connection is closed (MQTT 5 gets the reason)");
    }

    public void Dispose() => _meter.Dispose();

    private static Measurement<long>[] Dropped(MqttCounters counters) =>
    [
        new(counters.Dropped, new KeyValuePair<string, object?>("reason", "session-queue-full")),
        new(counters.DroppedForMemory, new KeyValuePair<string, object?>("reason", "memory-budget")),
    ];
}

/// <summary>Counts kept by the MQTT adapter; one increment per message, nothing else on the hot path.</summary>
internal sealed class MqttCounters
{
    private long _received;
    private long _refused;
    private long _sent;
    private long _dropped;
    private long _droppedForMemory;
    private readonly long[] _packetsRefused = new long[RefusalReasons.Length];

    // Metric tag values, indexed by GuardViolation.
    private static readonly string[] RefusalReasons =
        ["none", "packet-too-large", "malformed", "topic-name-invalid", "topic-alias-invalid", "protocol-error", "malformed"];

    public long Received => Interlocked.Read(ref _received);

    public long Refused => Interlocked.Read(ref _refused);

    public long Sent => Interlocked.Read(ref _sent);

    public long Dropped => Interlocked.Read(ref _dropped);

    public long DroppedForMemory => Interlocked.Read(ref _droppedForMemory);

    public void OnReceived() => Interlocked.Increment(ref _received);

    public void OnRefused() => Interlocked.Increment(ref _refused);

    public void OnSent() => Interlocked.Increment(ref _sent);

    public void OnDropped() => Interlocked.Increment(ref _dropped);

    public long OnDroppedForMemory() => Interlocked.Increment(ref _droppedForMemory);

    /// <summary>The packet guard refused a packet and closed its connection.</summary>
    public void OnPacketRefused(GuardViolation violation) => Interlocked.Increment(ref _packetsRefused[(int)violation]);

    /// <summary>One measurement per reason, zeros included, so every series exists from the start.</summary>
    public IEnumerable<Measurement<long>> PacketsRefused()
    {
        var sums = new Dictionary<string, long>(StringComparer.Ordinal);
        for (var i = 1; i < _packetsRefused.Length; i++)
        {
            sums[RefusalReasons[i]] = sums.GetValueOrDefault(RefusalReasons[i]) + Interlocked.Read(ref _packetsRefused[i]);
        }

        return [.. sums.Select(static s => new Measurement<long>(s.Value, new KeyValuePair<string, object?>("reason", s.Key)))];
    }
}
