using System.Numerics;
using System.Runtime.InteropServices;
using LiteDB;

namespace Gateway.Storage;

/// <summary>
/// Consecutive offsets of one queue's log stored as one pair of documents: a small header
/// (<see cref="SegmentDocuments.Headers"/>: queue, offsets, sizes, which records are removed)
/// and the packed records (<see cref="SegmentDocuments.Records"/>). The store keeps every header
/// in memory (writer thread only); a record is read only when its queue reads back from disk.
/// </summary>
internal sealed class Segment
{
    /// <summary>Most records in one segment (the removed-records bitmap stays 128 bytes).</summary>
    public const int MaxRecords = 1024;

    /// <summary>Segments are closed at this many bytes of records (under the large-object heap's threshold).</summary>
    public const int MaxBytes = 60 * 1024;

    /// <summary>A segment written by an earlier group is extended while it has fewer records than this.</summary>
    public const int ExtendBelow = 64;

    private ulong[]? _removed;

    public Segment(long id, string queue, long first)
    {
        Id = id;
        Queue = queue;
        First = first;
        Last = first - 1;
    }

    public long Id { get; }

    public string Queue { get; }

    public long First { get; }

    /// <summary>The last offset it holds (offsets are consecutive from <see cref="First"/>).</summary>
    public long Last { get; private set; }

    public int Count => (int)(Last - First + 1);

    /// <summary>Records not removed yet.</summary>
    public int Live { get; private set; }

    /// <summary>Body bytes of all its records, removed or not.</summary>
    public long BodyBytes { get; private set; }

    /// <summary>Length of its packed records, on disk and pending.</summary>
    public int RecordBytes { get; private set; }

    /// <summary>The records documents hold this much of <see cref="RecordBytes"/>; the rest is <see cref="Pending"/>.</summary>
    public int RecordBytesOnDisk { get; set; }

    public bool OnDisk { get; set; }

    /// <summary>
    /// It took the place of a freed one (a free slot, see <see cref="SegmentLog"/>): documents
    /// under its id are on disk already, to be overwritten rather than inserted.
    /// </summary>
    public bool ReusesSlot { get; init; }

    /// <summary>Its records could not be read: its documents are deleted, never reused.</summary>
    public bool Damaged { get; set; }

    /// <summary>Records appended since it was last written.</summary>
    public PooledBuffer? Pending { get; set; }

    /// <summary>Its header or records changed in the current group.</summary>
    public bool Dirty { get; set; }

    public bool HasRemovals => Live < Count;

    public bool Contains(long offset) => offset >= First && offset <= Last;

    public bool IsRemoved(long offset) => _removed is { } bits && IsSet(bits, (int)(offset - First));

    public bool CanAppend(long offset, int recordBytes) =>
        offset == Last + 1 && Live > 0 && Count < MaxRecords && RecordBytes + recordBytes <= MaxBytes
        && (!OnDisk || Count < ExtendBelow);

    public void Added(int bodyBytes, int recordBytes)
    {
        Last++;
        Live++;
        BodyBytes += bodyBytes;
        RecordBytes += recordBytes;
    }

    /// <summary>Marks one offset removed; false when it is not here or already removed.</summary>
    public bool Remove(long offset)
    {
        if (!Contains(offset))
        {
            return false;
        }

        var index = (int)(offset - First);
        _removed ??= new ulong[MaxRecords / 64];
        if (IsSet(_removed, index))
        {
            return false;
        }

        _removed[index >> 6] |= 1UL << (index & 63);
        Live--;
        return true;
    }

    public void RemoveAll()
    {
        Live = 0;
        _removed = null;
    }

    public BsonDocument ToHeader()
    {
        var header = new BsonDocument
        {
            ["_id"] = Id,
            ["q"] = Queue,
            ["f"] = First,
            ["l"] = Last,
            ["n"] = BodyBytes,
            ["z"] = RecordBytes,
        };
        if (HasRemovals && _removed is { } bits)
        {
            header["r"] = MemoryMarshal.AsBytes(bits.AsSpan(0, (Count + 63) / 64)).ToArray();
        }

        return header;
    }

    /// <summary>The header of a freed segment whose documents wait to be reused: it holds no records.</summary>
    public static BsonDocument FreeHeader(long id) =>
        new() { ["_id"] = id, ["free"] = true, ["q"] = "", ["f"] = 0L, ["l"] = -1L, ["n"] = 0L, ["z"] = 0 };

    /// <summary>A header written by <see cref="FreeHeader"/>: its records document is stale.</summary>
    public static bool IsFree(BsonDocument header) => header.TryGetValue("free", out var free) && free.IsBoolean && free.AsBoolean;

    public static Segment FromHeader(BsonDocument header)
    {
        var segment = new Segment(header["_id"].AsInt64, header["q"].AsString, header["f"].AsInt64)
        {
            Last = header["l"].AsInt64,
            BodyBytes = header["n"].AsInt64,
            RecordBytes = header["z"].AsInt32,
            OnDisk = true,
        };
        segment.RecordBytesOnDisk = segment.RecordBytes;
        segment.Live = segment.Count;
        if (header.TryGetValue("r", out var r) && r.IsBinary)
        {
            var bytes = r.AsBinary;
            segment._removed = new ulong[MaxRecords / 64];
            bytes.AsSpan(0, Math.Min(bytes.Length, MaxRecords / 8)).CopyTo(MemoryMarshal.AsBytes(segment._removed.AsSpan()));
            var removed = 0;
            for (var i = 0; i < segment._removed.Length; i++)
            {
                removed += BitOperations.PopCount(segment._removed[i]);
            }

            segment.Live = segment.Count - removed;
        }

        return segment;
    }

    private static bool IsSet(ulong[] bits, int index) => (bits[index >> 6] & (1UL << (index & 63))) != 0;
}

/// <summary>One queue's segments in offset order.</summary>
internal sealed class QueueSegments
{
    private readonly List<Segment> _segments = [];
    private int _head; // segments before it are gone (removed from the front lazily)

    public int Count => _segments.Count - _head;

    /// <summary>The highest offset appended so far (where appends without an offset continue).</summary>
    public long LastOffset { get; set; }

    public Segment? Tail => Count > 0 ? _segments[^1] : null;

    public Segment this[int index] => _segments[_head + index];

    public void Add(Segment segment)
    {
        if (Tail is { } tail && segment.First <= tail.Last)
        {
            _segments.Insert(_head + LowerBound(segment.First), segment); // only when a header is read back out of order
        }
        else
        {
            _segments.Add(segment);
        }

        LastOffset = Math.Max(LastOffset, segment.Last);
    }

    /// <summary>Index of the first segment whose last offset is at or after <paramref name="offset"/>.</summary>
    public int LowerBound(long offset)
    {
        int low = _head, high = _segments.Count;
        while (low < high)
        {
            var mid = (low + high) >>> 1;
            if (_segments[mid].Last < offset)
            {
                low = mid + 1;
            }
            else
            {
                high = mid;
            }
        }

        return low - _head;
    }

    public Segment? Find(long offset)
    {
        var index = LowerBound(offset);
        return index < Count && this[index].Contains(offset) ? this[index] : null;
    }

    public void Drop(Segment segment)
    {
        var index = LowerBound(segment.First);
        if (index >= Count || !ReferenceEquals(this[index], segment))
        {
            return;
        }

        if (index == 0)
        {
            _segments[_head++] = null!;
            if (_head >= 64 && _head * 2 >= _segments.Count)
            {
                _segments.RemoveRange(0, _head);
                _head = 0;
            }
        }
        else
        {
            _segments.RemoveAt(_head + index);
        }
    }
}
