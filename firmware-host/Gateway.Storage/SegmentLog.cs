using Gateway.Routing;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage;

/// <summary>The documents of the segment format.</summary>
internal static class SegmentDocuments
{
    public const string Headers = "segments";
    public const string Records = "records";

    // Queue and first offset are repeated here so a header lost to damage can be rebuilt.
    public static BsonDocument ToRecords(Segment segment, byte[] records) =>
        new() { ["_id"] = segment.Id, ["q"] = segment.Queue, ["f"] = segment.First, ["d"] = records };
}

/// <summary>
/// Every queue's log as segments (<see cref="Segment"/>), owned by the store's writer thread.
/// Appends of one group to one queue share a segment, and a segment becomes a document pair
/// once per group, so a group commit costs a few LiteDB documents however many messages it
/// holds. Which records of a partly consumed segment are gone is kept in its header, so a
/// restart redelivers none. A segment whose every record is removed keeps its documents as a
/// free slot (its header says so, its records are stale) for a new segment to overwrite: a
/// forwarding queue then rewrites the same few pages group after group, where deleting and
/// inserting documents would free and allocate pages and change both indexes every time, and a
/// drained backlog leaves slots for the traffic after it rather than pages to free one by one.
/// A LiteDB file never shrinks, so the slots hold no space the file would otherwise give back;
/// only a damaged segment's documents are deleted.
/// </summary>
internal sealed class SegmentLog : IDisposable
{
    private readonly Dictionary<string, QueueSegments> _queues = new(StringComparer.Ordinal);
    private readonly List<Segment> _dirty = [];
    private readonly Stack<long> _freeSlots = new(); // ids of free slots, the last freed on top
    private readonly PooledBuffer _scratch = new(4096);
    private readonly ILogger _logger;
    private LiteDatabase _database;
    private long _lastId;
    private bool _appended; // records appended since the last Persist

    public SegmentLog(LiteDatabase database, ILogger logger)
    {
        _database = database;
        _logger = logger;
    }

    public IReadOnlyDictionary<string, QueueSegments> Queues => _queues;

    public long MessageCount { get; private set; }

    /// <summary>Something changed since the last <see cref="Persist"/>.</summary>
    public bool HasChanges => _dirty.Count > 0;

    /// <summary>Segments changed since the last <see cref="Persist"/>.</summary>
    public int DirtyCount => _dirty.Count;

    private ILiteCollection<BsonDocument> Headers => _database.GetCollection(SegmentDocuments.Headers);

    private ILiteCollection<BsonDocument> Records => _database.GetCollection(SegmentDocuments.Records);

    /// <summary>
    /// Reads every segment header (a batch per read transaction: LiteDB keeps every page a
    /// transaction read in its cache until it ends). Opening a file reads only its header page,
    /// so this walk is also the damage probe.
    /// </summary>
    public void Load(LiteDatabase database) => Load(database, verify: false);

    /// <summary>
    /// Reads every segment header, then, with <paramref name="verify"/>, every live segment's
    /// records: opening a LiteDB file reads only its header page, so this walk is the damage
    /// probe. Headers are read a batch per read transaction and records one segment per read
    /// (LiteDB keeps every page a transaction read in its cache until it ends, so one pass over
    /// a large backlog would hold the file in memory).
    /// </summary>
    public void Load(LiteDatabase database, bool verify)
    {
        _database = database;
        _queues.Clear();
        _dirty.Clear();
        _freeSlots.Clear();
        MessageCount = 0;
        var byId = verify ? new Dictionary<long, Segment>() : null;
        var loaded = new List<Segment>();
        long after = long.MinValue;
        int batch;
        do
        {
            batch = 0;
            foreach (var header in Headers.Find(Query.GT("_id", after), limit: HeaderBatch))
            {
                after = header["_id"].AsInt64;
                _lastId = Math.Max(_lastId, after);
                batch++;
                if (Segment.IsFree(header))
                {
                    _freeSlots.Push(after);
                    continue;
                }

                var segment = Segment.FromHeader(header);
                byId?.Add(segment.Id, segment);
                loaded.Add(segment);
                MessageCount += segment.Live;
            }
        }
        while (batch == HeaderBatch);

        // Reused slots make id order differ from offset order.
        loaded.Sort(static (a, b) => a.First.CompareTo(b.First));
        foreach (var segment in loaded)
        {
            QueueOf(segment.Queue).Add(segment);
        }

        if (byId is not null)
        {
            Verify(byId);
        }
    }

    private const int HeaderBatch = 4096;
    private const int LegacyBatch = 1024;

    // Every records document parses into exactly the records its header counts, and every
    // header has one: anything else is damage (both are written in one transaction). Which
    // records documents exist comes from the _id index alone, so a free slot's stale records
    // are never read. Records without any header are damage too: recovery keeps them.
    private void Verify(Dictionary<long, Segment> headers)
    {
        var free = new HashSet<long>(_freeSlots);
        var live = new List<long>(headers.Count);
        foreach (var key in Records.Query().Select("{ _id }").ToEnumerable())
        {
            var id = key["_id"].AsInt64;
            if (headers.ContainsKey(id))
            {
                live.Add(id);
            }
            else if (!free.Contains(id))
            {
                throw new LiteException(0, $"Segment {id} has no header.");
            }
        }

        if (live.Count != headers.Count)
        {
            throw new LiteException(0, $"{headers.Count - live.Count} segments have no records.");
        }

        foreach (var id in live)
        {
            var segment = headers[id];
            if (Parse(LoadRecords(segment), out _) != segment.Count)
            {
                throw new LiteException(0, $"Segment {id} does not match its header.");
            }
        }
    }

    /// <summary>How many whole records <paramref name="records"/> holds (throws when it is cut short).</summary>
    public static int Parse(ReadOnlySpan<byte> records, out long bodyBytes)
    {
        int count = 0, at = 0;
        bodyBytes = 0;
        while (at < records.Length)
        {
            at = SegmentCodec.Skip(records, at, out var body);
            bodyBytes += body;
            count++;
        }

        return at == records.Length ? count : throw new FormatException("Segment records are cut short.");
    }

    /// <summary>
    /// Moves messages stored one document each (the format before segments) into segments, a
    /// batch per transaction (each batch's messages are in segments or in the old collection,
    /// never both or neither), then drops the old collection. Returns how many moved.
    /// </summary>
    public long ImportLegacy(LiteDbLogFile logFile)
    {
        if (!_database.CollectionExists(MessageDocument.Collection))
        {
            return 0;
        }

        var legacy = _database.GetCollection(MessageDocument.Collection);
        long moved = 0;
        while (true)
        {
            var batch = legacy.Find(Query.All("_id", Query.Ascending), limit: LegacyBatch).ToList();
            if (batch.Count == 0)
            {
                break;
            }

            _database.BeginTrans();
            foreach (var document in batch)
            {
                var id = document["_id"].AsString;
                Append(MessageDocument.QueueOf(id), MessageDocument.OffsetOf(id), MessageDocument.ToMessage(document), MessageDocument.EnqueuedAt(document));
                legacy.Delete(id);
            }

            Persist();
            _database.Commit();
            moved += batch.Count;
            if (logFile.IsFull)
            {
                logFile.Checkpoint(_database); // LiteDB keeps every page of its log in memory until one
            }
        }

        _database.DropCollection(MessageDocument.Collection);
        logFile.Checkpoint(_database);
        MessageCount += moved;
        return moved;
    }

    /// <summary>What each queue's log holds now (its bytes exact: partly removed segments are read).</summary>
    public QueueLogInfo Describe(string queue)
    {
        if (!_queues.TryGetValue(queue, out var segments) || segments.Count == 0)
        {
            return default;
        }

        long count = 0, bytes = 0;
        for (var i = 0; i < segments.Count; i++)
        {
            var segment = segments[i];
            count += segment.Live;
            bytes += segment.HasRemovals ? LiveBodyBytes(segment) : segment.BodyBytes;
        }

        return new QueueLogInfo(count, bytes, segments[0].First, segments.LastOffset);
    }

    public long Append(string queue, long? offset, GatewayMessage message, TimeSpan enqueuedAt)
    {
        var segments = QueueOf(queue);
        var at = offset ?? segments.LastOffset + 1;
        _scratch.Clear();
        var length = SegmentCodec.Write(_scratch, message, enqueuedAt);
        var segment = segments.Tail;
        if (segment is null || !segment.CanAppend(at, length))
        {
            segment = _freeSlots.TryPop(out var slot) ? new Segment(slot, queue, at) { ReusesSlot = true } : new Segment(++_lastId, queue, at);
            segments.Add(segment);
        }

        var pending = segment.Pending ??= new PooledBuffer(Math.Max(4096, length));
        _scratch.WrittenSpan.CopyTo(pending.GetSpan(length));
        pending.Advance(length);
        segment.Added(message.Body.Length, length);
        segments.LastOffset = Math.Max(segments.LastOffset, at);
        MarkDirty(segment);
        _appended = true;
        return at;
    }

    /// <summary>Removes the offsets from <paramref name="first"/> to <paramref name="last"/> inclusive; returns how many there were.</summary>
    public int Remove(string queue, long first, long last)
    {
        if (!_queues.TryGetValue(queue, out var segments))
        {
            return 0;
        }

        var removed = 0;
        var i = segments.LowerBound(first);
        while (i < segments.Count && segments[i].First <= last)
        {
            var segment = segments[i];
            if (first <= segment.First && last >= segment.Last)
            {
                removed += segment.Live;
                segment.RemoveAll();
            }
            else
            {
                for (var offset = Math.Max(first, segment.First); offset <= Math.Min(last, segment.Last); offset++)
                {
                    removed += segment.Remove(offset) ? 1 : 0;
                }
            }

            MarkDirty(segment);
            if (segment.Live == 0)
            {
                segments.Drop(segment);
            }
            else
            {
                i++;
            }
        }

        return removed;
    }

    public long Count(string queue)
    {
        long count = 0;
        if (_queues.TryGetValue(queue, out var segments))
        {
            for (var i = 0; i < segments.Count; i++)
            {
                count += segments[i].Live;
            }
        }

        return count;
    }

    /// <summary>Up to <paramref name="max"/> messages with offsets in [from, to), in order.</summary>
    public List<StoredMessage> Read(string queue, long from, long to, int max)
    {
        if (_appended)
        {
            Persist(); // the records appended in this group are read like the rest
        }

        var messages = new List<StoredMessage>(Math.Min(max, 1024));
        if (!_queues.TryGetValue(queue, out var segments) || to <= from)
        {
            return messages;
        }

        var i = segments.LowerBound(from);
        while (i < segments.Count && messages.Count < max && segments[i].First < to)
        {
            var segment = segments[i];
            if (ReadSegment(segment, from, to, max, messages))
            {
                i++;
            }
        }

        return messages;
    }

    // False when the segment could not be read and was dropped.
    private bool ReadSegment(Segment segment, long from, long to, int max, List<StoredMessage> messages)
    {
        byte[] blob;
        var added = messages.Count;
        try
        {
            blob = LoadRecords(segment);
            var at = 0;
            for (var offset = segment.First; offset <= segment.Last && offset < to && messages.Count < max; offset++)
            {
                if (offset < from || segment.IsRemoved(offset))
                {
                    at = SegmentCodec.Skip(blob, at, out _);
                    continue;
                }

                at = SegmentCodec.Read(blob, at, out var message, out var enqueuedAt);
                messages.Add(new StoredMessage(offset, message, enqueuedAt));
            }

            return true;
        }
        catch (Exception ex) when (StoreRecovery.IsDamage(ex))
        {
            messages.RemoveRange(added, messages.Count - added);
            StoreLog.SegmentLost(_logger, segment.Queue, segment.First, segment.Last, segment.Live, ex);
            segment.Damaged = true;
            segment.RemoveAll();
            MarkDirty(segment);
            _queues[segment.Queue].Drop(segment);
            return false;
        }
    }

    /// <summary>Writes what changed in this group: new and extended segments, removals, deletions.</summary>
    public void Persist()
    {
        foreach (var segment in _dirty)
        {
            segment.Dirty = false;
            if (segment.Live == 0)
            {
                Free(segment);
                segment.Pending?.Dispose();
                segment.Pending = null;
                continue;
            }

            if (segment.Pending is { } pending)
            {
                var records = new byte[segment.RecordBytes];
                if (segment.RecordBytesOnDisk > 0)
                {
                    Records.FindById(segment.Id)["d"].AsBinary.AsSpan(0, segment.RecordBytesOnDisk).CopyTo(records);
                }

                pending.WrittenSpan.CopyTo(records.AsSpan(segment.RecordBytesOnDisk));
                Write(Records, segment, SegmentDocuments.ToRecords(segment, records));
                segment.RecordBytesOnDisk = records.Length;
                pending.Dispose();
                segment.Pending = null;
            }

            Write(Headers, segment, segment.ToHeader());
            segment.OnDisk = true;
        }

        _dirty.Clear();
        _appended = false;
    }

    // One of a segment's documents: replaces its earlier version, or a free slot's, or is new.
    private static void Write(ILiteCollection<BsonDocument> collection, Segment segment, BsonDocument document)
    {
        if (segment.OnDisk)
        {
            collection.Update(document);
        }
        else if (segment.ReusesSlot)
        {
            collection.Upsert(document); // a slot whose documents damage took is written anew
        }
        else
        {
            collection.Insert(document);
        }
    }

    // A segment with no records left: its documents become a free slot (deleted when damaged).
    private void Free(Segment segment)
    {
        if (!segment.OnDisk)
        {
            if (segment.ReusesSlot)
            {
                _freeSlots.Push(segment.Id); // never written: its slot is still free on disk
            }

            return;
        }

        if (!segment.Damaged)
        {
            Headers.Update(Segment.FreeHeader(segment.Id));
            _freeSlots.Push(segment.Id);
        }
        else
        {
            Headers.Delete(segment.Id);
            Records.Delete(segment.Id);
        }
    }

    public void Dispose()
    {
        ReleasePending();
        _scratch.Dispose();
    }

    /// <summary>The database was closed: nothing refers to it until <see cref="Load(LiteDatabase)"/> gets the next one.</summary>
    public void Detach() => _database = null!;

    /// <summary>After a failed group: forget what it did and read the headers again.</summary>
    public void Reload()
    {
        ReleasePending();
        Load(_database);
    }

    private void ReleasePending()
    {
        foreach (var segment in _dirty)
        {
            segment.Pending?.Dispose();
            segment.Pending = null;
        }

        _dirty.Clear();
        _appended = false;
    }

    private void MarkDirty(Segment segment)
    {
        if (!segment.Dirty)
        {
            segment.Dirty = true;
            _dirty.Add(segment);
        }
    }

    private QueueSegments QueueOf(string queue)
    {
        if (!_queues.TryGetValue(queue, out var segments))
        {
            segments = new QueueSegments();
            _queues.Add(queue, segments);
        }

        return segments;
    }

    private byte[] LoadRecords(Segment segment) =>
        Records.FindById(segment.Id)?["d"].AsBinary ?? throw new LiteException(0, $"Records of segment {segment.Id} are missing.");

    private long LiveBodyBytes(Segment segment)
    {
        try
        {
            var blob = LoadRecords(segment);
            long bytes = 0;
            var at = 0;
            for (var offset = segment.First; offset <= segment.Last; offset++)
            {
                at = SegmentCodec.Skip(blob, at, out var body);
                bytes += segment.IsRemoved(offset) ? 0 : body;
            }

            return bytes;
        }
        catch (Exception ex) when (StoreRecovery.IsDamage(ex))
        {
            return segment.BodyBytes * segment.Live / segment.Count; // read back (and reported) later
        }
    }
}
