using System.Diagnostics.Metrics;

namespace Gateway.Storage;

/// <summary>
/// The message store in System.Diagnostics.Metrics (meter <c>Gateway.Storage</c>): its size on
/// disk, the free-disk reserve (<c>Storage:MinFreeMegabytes</c>) and what it refused, and its
/// group commits.
/// </summary>
public sealed class StoreMetrics : IDisposable
{
    public const string MeterName = "Gateway.Storage";

    private readonly Meter _meter;

    public StoreMetrics(IMeterFactory meters, LiteDbMessageStore store)
    {
        _meter = meters.Create(MeterName);
        _meter.CreateObservableUpDownCounter("gateway.store.size", () => store.SizeOnDisk, "By", "the store's files on disk: gateway.db and its log");
        _meter.CreateObservableUpDownCounter("gateway.store.low_disk", () => store.LowOnDisk ? 1 : 0, description: "1 while free disk space is under Storage:MinFreeMegabytes and messages for durable queues are refused");
        _meter.CreateObservableCounter("gateway.store.refused_low_disk", () => store.RefusedLowDisk, "{message}", "messages for durable queues refused for lack of disk space");
        _meter.CreateObservableCounter("gateway.store.commits", () => store.Groups, "{transaction}", "group commits: one transaction each, and one fsync of the log for those that must be on disk before anyone is answered (appends, retained messages, an uplink's removal sync) when Storage:Durability is durable");
        _meter.CreateObservableCounter("gateway.store.write_failures", () => store.WriteFailures, "{operation}", "writes (appends, retained messages) that failed and were answered with the failure; the other operations of their group were written");
        _meter.CreateObservableCounter("gateway.store.reopens", () => store.Reopens, "{reopen}", "times the database was closed and opened again after the disk failed a write (a full disk)");
        _meter.CreateObservableUpDownCounter("gateway.store.write_failing", () => store.WriteFailure is null ? 0 : 1, description: "1 while the store's writes fail (the last write failed, none succeeded since)");
        _meter.CreateObservableCounter("gateway.store.operations", () => store.Operations, "{operation}", "appends, removals and reads the commits carried");
    }

    public void Dispose() => _meter.Dispose();
}
