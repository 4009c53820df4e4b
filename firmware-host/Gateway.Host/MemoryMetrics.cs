using System.Diagnostics.Metrics;
using Gateway.Routing;

namespace Gateway.Host;

/// <summary>
/// The memory budget in System.Diagnostics.Metrics (meter <c>Gateway.Memory</c>): its size
/// (<c>Memory:BudgetMegabytes</c>), what is charged to it now, and the messages not queued or
/// refused because it was full.
/// </summary>
internal sealed class MemoryMetrics : IDisposable
{
    public const string MeterName = "Gateway.Memory";

    private readonly Meter _meter;

    public MemoryMetrics(IMeterFactory meters, MemoryBudget budget)
    {
        _meter = meters.Create(MeterName);
        _meter.CreateObservableUpDownCounter("gateway.memory.budget", () => budget.Limit, "By", "the memory budget for messages held for clients that are not taking them (Memory:BudgetMegabytes)");
        _meter.CreateObservableUpDownCounter("gateway.memory.budget.used", () => budget.Used, "By", "message bytes charged to the memory budget now: offline or lagging MQTT sessions, and subscribers' queues");
        _meter.CreateObservableCounter("gateway.memory.budget.refused", () => budget.Refused, "{message}", "messages not queued for a session (QoS 0 over half the budget, QoS 1/2 over all of it) or publishes refused (QoS 1/2) because the budget was full");
    }

    public void Dispose() => _meter.Dispose();
}
