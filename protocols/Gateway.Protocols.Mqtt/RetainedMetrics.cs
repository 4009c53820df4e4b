using System.Diagnostics.Metrics;

namespace Gateway.Protocols.Mqtt;

/// <summary>
/// Retained messages in meter <c>Gateway.Mqtt</c>: how many are held and their bytes against
/// <c>Mqtt:MaxRetainedMessages</c>/<c>Mqtt:MaxRetainedBytes</c>, publishes refused over them (by
/// reason), and whether loading them at start failed.
/// </summary>
internal sealed class RetainedMetrics : IDisposable
{
    private readonly Meter _meter;

    public RetainedMetrics(IMeterFactory meters, MqttAdapter adapter)
    {
        _meter = meters.Create(MqttMetrics.MeterName); // the factory's one meter of that name
        _meter.CreateObservableUpDownCounter("gateway.mqtt.retained.messages", () => adapter.RetainedBudget.Count, "{message}", "retained messages held (every one in memory and on disk)");
        _meter.CreateObservableUpDownCounter("gateway.mqtt.retained.size", () => adapter.RetainedBudget.Bytes, "By", "payload and topic bytes of the retained messages held, counted against Mqtt:MaxRetainedBytes");
        _meter.CreateObservableCounter("gateway.mqtt.retained.refused", () => Refused(adapter.RetainedBudget), "{message}", "retained publishes refused: reason max-messages (Mqtt:MaxRetainedMessages) or max-bytes (Mqtt:MaxRetainedBytes)");
        _meter.CreateObservableUpDownCounter("gateway.mqtt.retained.load_failed", () => adapter.RetainedLoadFailure is null ? 0 : 1, description: "1 when loading the retained messages at start failed (see /healthz and the log)");
    }

    private static Measurement<long>[] Refused(RetainedBudget budget) =>
    [
        new(budget.RefusedMessages, new KeyValuePair<string, object?>("reason", "max-messages")),
        new(budget.RefusedBytes, new KeyValuePair<string, object?>("reason", "max-bytes")),
    ];

    public void Dispose() => _meter.Dispose();
}
