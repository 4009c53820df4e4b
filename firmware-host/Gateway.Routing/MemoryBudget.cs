namespace Gateway.Routing;

/// <summary>
/// One budget for the message bytes the gateway holds in memory on behalf of clients that are
/// not taking them (offline persistent sessions, subscribers that fell behind, transient
/// queues without consumers), so that together they cannot outgrow the heap however many
/// there are. Each holder reserves what it keeps and releases it when the message leaves.
/// Messages that may be dropped (MQTT QoS 0) get the first half of the budget; messages a
/// publisher was promised (QoS 1/2) may fill it, and once it is full such publishers are
/// refused (as RabbitMQ's memory alarm blocks them) rather than acknowledged and then lost.
/// Promised messages already accepted when it filled still fit: they may take the budget to
/// twice its size, which a quarter of the heap (the default) leaves room for.
/// Thread-safe; one interlocked operation per call.
/// </summary>
public sealed class MemoryBudget
{
    private long _used;
    private long _refused;

    /// <param name="limitBytes">The budget; at least 1 MB.</param>
    public MemoryBudget(long limitBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(limitBytes, 1024 * 1024);
        Limit = limitBytes;
    }

    /// <summary>A quarter of what the garbage collector may use: its heap limit where one is set
    /// (the shipped build's 256 MB cap), otherwise the machine's or container's memory.</summary>
    public static long DefaultLimit => Math.Max(1024 * 1024, GC.GetGCMemoryInfo().TotalAvailableMemoryBytes / 4);

    public long Limit { get; }

    /// <summary>Bytes reserved now.</summary>
    public long Used => Interlocked.Read(ref _used);

    /// <summary>Messages not kept or refused because the budget was full, since start.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    /// <summary>True when kept messages (QoS 1/2) have filled the budget: new ones are to be refused.</summary>
    public bool IsFull => Used >= Limit;

    /// <summary>Reserves <paramref name="bytes"/> for a message that may be dropped, within half the budget.</summary>
    public bool TryReserveDroppable(long bytes) => TryReserve(bytes, Limit / 2);

    /// <summary>Reserves <paramref name="bytes"/> for a message that was promised to its publisher:
    /// publishers are refused from <see cref="IsFull"/> on, so only those accepted before it
    /// go over, up to twice the budget.</summary>
    public bool TryReserveKept(long bytes) => TryReserve(bytes, 2 * Limit);

    /// <summary>Reserves without a check: for messages whose holder is bounded otherwise (a
    /// subscriber that keeps up is bounded by flow control), so the total stays honest.</summary>
    public void Reserve(long bytes) => Interlocked.Add(ref _used, bytes);

    public void Release(long bytes) => Interlocked.Add(ref _used, -bytes);

    /// <summary>Counts a message refused because the budget is full; returns the count so far.</summary>
    public long OnRefused() => Interlocked.Increment(ref _refused);

    private bool TryReserve(long bytes, long ceiling)
    {
        var used = Interlocked.Read(ref _used);
        while (true)
        {
            if (used + bytes > ceiling)
            {
                Interlocked.Increment(ref _refused);
                return false;
            }

            var seen = Interlocked.CompareExchange(ref _used, used + bytes, used);
            if (seen == used)
            {
                return true;
            }

            used = seen;
        }
    }
}
