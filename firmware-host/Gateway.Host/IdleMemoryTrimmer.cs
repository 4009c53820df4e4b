namespace Gateway.Host;

/// <summary>
/// Gives memory back to the system once a burst is over. After heavy traffic (a backlog
/// stored or drained) the .NET GC keeps the memory it grew into committed, tens of megabytes
/// more than the live heap, for as long as the process stays quiet; on a board with 1 GB
/// that is memory other services could use. When an interval that allocated a lot is
/// followed by a quiet one and the GC holds at least <see cref="MinReturnBytes"/> more than
/// the live heap, one aggressive collection decommits it (a blocking collection of a heap of
/// a few megabytes: 8–16 ms on the 2-core benchmark machine, and only when nothing is
/// happening). Logged at Debug with the sizes and the pause.
/// </summary>
internal sealed class IdleMemoryTrimmer(TimeProvider time, ILogger<IdleMemoryTrimmer> logger) : BackgroundService
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(2);

    /// <summary>An interval allocating more than this is busy; one allocating less is quiet.</summary>
    private const long BusyBytes = 8 * 1024 * 1024;

    private const long MinReturnBytes = 16 * 1024 * 1024;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Interval, time);
        var allocated = GC.GetTotalAllocatedBytes();
        var busy = true; // start-up is a burst too: opening a store with a backlog reads all of it
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = GC.GetTotalAllocatedBytes();
                var delta = now - allocated;
                allocated = now;
                if (delta > BusyBytes)
                {
                    busy = true;
                }
                else if (busy)
                {
                    busy = false;
                    TrimIfWorthIt();
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Stopping.
        }
    }

    private void TrimIfWorthIt()
    {
        var before = GC.GetGCMemoryInfo();
        if (before.TotalCommittedBytes - before.HeapSizeBytes < MinReturnBytes)
        {
            return;
        }

        var started = time.GetTimestamp();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        var pause = time.GetElapsedTime(started);
        var after = GC.GetGCMemoryInfo();
        HostLog.MemoryTrimmed(logger, before.TotalCommittedBytes / (1024 * 1024), after.TotalCommittedBytes / (1024 * 1024), after.HeapSizeBytes / (1024 * 1024), pause.TotalMilliseconds);
    }
}
