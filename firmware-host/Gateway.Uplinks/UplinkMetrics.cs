using System.Diagnostics.Metrics;

namespace Gateway.Uplinks;

/// <summary>
/// Per-uplink health in System.Diagnostics.Metrics (meter <c>Gateway.Uplinks</c>, tag
/// <c>uplink</c>): state, backlog, ages, and everything that left the buffer other than by
/// confirmation, by reason; and what came down from the broker.
/// </summary>
internal sealed class UplinkMetrics : IDisposable
{
    public const string MeterName = "Gateway.Uplinks";

    private readonly Meter _meter;

    public UplinkMetrics(IMeterFactory meters, UplinkService service)
    {
        _meter = meters.Create(MeterName);
        _meter.CreateObservableGauge("gateway.uplink.state", () => Each(service, u => (long)u.State), description: "0 unknown, 1 connected, 2 buffering, 3 draining, 4 stalled, 5 failed");
        _meter.CreateObservableGauge("gateway.uplink.backlog.messages", () => Each(service, static u => u.Queue.GetStatistics() is var s ? s.Ready + (long)s.Unacknowledged : 0), "{message}");
        _meter.CreateObservableGauge("gateway.uplink.backlog.bytes", () => Each(service, u => u.Queue.GetStatistics().ReadyBytes), "By");
        _meter.CreateObservableGauge("gateway.uplink.oldest_message.age", () => EachDouble(service, u => u.Queue.GetStatistics().OldestReadyAge.TotalSeconds), "s");
        _meter.CreateObservableGauge("gateway.uplink.last_confirmed.age", () => EachDouble(service, u => u.LastConfirmedAge?.TotalSeconds ?? -1), "s", "seconds since the broker last confirmed a message; -1 before the first");
        _meter.CreateObservableGauge("gateway.uplink.in_flight", () => Each(service, u => u.InFlight), "{message}");
        _meter.CreateObservableCounter("gateway.uplink.forwarded", () => Each(service, u => u.Forwarded), "{message}");
        _meter.CreateObservableCounter("gateway.uplink.dropped", () => Dropped(service), "{message}", "messages that left the buffer unsent, by reason");
        _meter.CreateObservableCounter("gateway.uplink.downlink.delivered", () => Each(service, u => u.Downlink.Delivered), "{message}", "cloud messages delivered locally");
        _meter.CreateObservableCounter("gateway.uplink.downlink.dropped", () => Each(service, u => u.Downlink.TooLarge), "{message}", "cloud messages over MaxPacketSize, dropped and acknowledged");
        _meter.CreateObservableCounter("gateway.uplink.downlink.refused", () => Each(service, u => u.Downlink.Refused), "{message}", "cloud messages a local durable queue refused (full with reject-publish, low disk): MQTT 5 answers 0x97 (quota exceeded), 3.1.1 does not acknowledge them");
        _meter.CreateObservableCounter("gateway.uplink.downlink.failed", () => Each(service, u => u.Downlink.Failed), "{message}", "cloud messages not delivered locally and not acknowledged (the broker sends them again after a reconnect)");
    }

    public void Dispose() => _meter.Dispose();

    private static IEnumerable<Measurement<long>> Each(UplinkService service, Func<CloudForwarder, long> value)
    {
        foreach (var uplink in service.Uplinks)
        {
            yield return new Measurement<long>(value(uplink), new KeyValuePair<string, object?>("uplink", uplink.Name));
        }
    }

    private static IEnumerable<Measurement<double>> EachDouble(UplinkService service, Func<CloudForwarder, double> value)
    {
        foreach (var uplink in service.Uplinks)
        {
            yield return new Measurement<double>(value(uplink), new KeyValuePair<string, object?>("uplink", uplink.Name));
        }
    }

    private static IEnumerable<Measurement<long>> Dropped(UplinkService service)
    {
        foreach (var uplink in service.Uplinks)
        {
            var statistics = uplink.Queue.GetStatistics();
            var name = new KeyValuePair<string, object?>("uplink", uplink.Name);
            yield return new Measurement<long>(statistics.DroppedMaxLength, name, new("reason", "buffer-full"));
            yield return new Measurement<long>(statistics.RejectedMaxLength, name, new("reason", "rejected-publish"));
            yield return new Measurement<long>(statistics.Expired, name, new("reason", "expired"));
            yield return new Measurement<long>(uplink.CloudRejected, name, new("reason", "broker-rejected"));
        }
    }
}
