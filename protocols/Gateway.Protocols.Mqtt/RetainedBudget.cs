namespace Gateway.Protocols.Mqtt;

/// <summary>Why a retained message was not kept.</summary>
internal enum RetainedRefusal
{
    None,

    /// <summary>A new topic beyond <c>Mqtt:MaxRetainedMessages</c>.</summary>
    TooManyMessages,

    /// <summary>The total beyond <c>Mqtt:MaxRetainedBytes</c>.</summary>
    TooManyBytes,
}

/// <summary>
/// How many retained messages the gateway holds and their bytes (payload plus topic), against
/// <c>Mqtt:MaxRetainedMessages</c> and <c>Mqtt:MaxRetainedBytes</c>. MQTTnet keeps every
/// retained message in memory, so this is what bounds that memory. A change is reserved before
/// the store writes it and undone when the write fails; replacing a topic's message with one no
/// larger, and clearing one, always fit.
/// </summary>
internal sealed class RetainedBudget(long maxMessages, long maxBytes)
{
    private readonly Dictionary<string, long> _sizes = new(StringComparer.Ordinal);
    private readonly Lock _sync = new();
    private long _bytes;
    private long _refusedMessages;
    private long _refusedBytes;
    private int _refusing; // 1 from a refusal until a retained message fits again

    /// <summary>What a reservation replaced, so a failed write can put it back.</summary>
    public readonly record struct Reservation(string Topic, long Previous, bool HadPrevious);

    public long MaxMessages => maxMessages;

    public long MaxBytes => maxBytes;

    public int Count
    {
        get
        {
            lock (_sync)
            {
                return _sizes.Count;
            }
        }
    }

    public long Bytes
    {
        get
        {
            lock (_sync)
            {
                return _bytes;
            }
        }
    }

    public long RefusedMessages => Interlocked.Read(ref _refusedMessages);

    public long RefusedBytes => Interlocked.Read(ref _refusedBytes);

    public static long SizeOf(string topic, int payloadLength) => topic.Length + (long)payloadLength;

    /// <summary>Takes room for a topic's new retained message, or says why there is none.</summary>
    public RetainedRefusal TryReserve(string topic, long size, out Reservation reservation)
    {
        lock (_sync)
        {
            var hadPrevious = _sizes.TryGetValue(topic, out var previous);
            reservation = new Reservation(topic, previous, hadPrevious);
            var refusal = !hadPrevious && _sizes.Count >= maxMessages ? RetainedRefusal.TooManyMessages
                : size > previous && _bytes - previous + size > maxBytes ? RetainedRefusal.TooManyBytes
                : RetainedRefusal.None;
            switch (refusal)
            {
                case RetainedRefusal.TooManyMessages:
                    _refusedMessages++;
                    return refusal;
                case RetainedRefusal.TooManyBytes:
                    _refusedBytes++;
                    return refusal;
            }

            _sizes[topic] = size;
            _bytes += size - previous;
            _refusing = 0;
            return RetainedRefusal.None;
        }
    }

    /// <summary>True for the first refusal since a retained message last fitted (said once, loudly).</summary>
    public bool StartsRefusing() => Interlocked.Exchange(ref _refusing, 1) == 0;

    /// <summary>Puts back what <paramref name="reservation"/> replaced (its write failed).</summary>
    public void Undo(Reservation reservation)
    {
        lock (_sync)
        {
            if (!_sizes.Remove(reservation.Topic, out var size))
            {
                size = 0;
            }

            _bytes -= size;
            if (reservation.HadPrevious)
            {
                _sizes[reservation.Topic] = reservation.Previous;
                _bytes += reservation.Previous;
            }
        }
    }

    public void Remove(string topic)
    {
        lock (_sync)
        {
            if (_sizes.Remove(topic, out var size))
            {
                _bytes -= size;
            }
        }
    }

    public void Clear()
    {
        lock (_sync)
        {
            _sizes.Clear();
            _bytes = 0;
        }
    }
}
