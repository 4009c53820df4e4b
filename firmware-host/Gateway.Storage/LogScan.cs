using System.Collections.Concurrent;
using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

/// <summary>
/// One walk of the log's keys at open: each queue's last offset (where appends continue) and
/// what it holds (handed to the queue when it is declared). Opening reads only the file's
/// header, so this walk, which touches every index page, is also the damage probe.
/// </summary>
internal sealed class LogScan
{
    public Dictionary<string, long> LastOffsets { get; } = new(StringComparer.Ordinal);

    public ConcurrentDictionary<string, QueueLogInfo> AtOpen { get; } = new(StringComparer.Ordinal);

    public long Count { get; private set; }

    public static LogScan Of(LiteDatabase database)
    {
        var scan = new LogScan();
        StoreRecovery.ScanLog(database, scan.Add);
        return scan;
    }

    private void Add(string id, BsonDocument row)
    {
        var queue = MessageDocument.QueueOf(id);
        var offset = MessageDocument.OffsetOf(id);
        if (!LastOffsets.TryGetValue(queue, out var last) || offset > last)
        {
            LastOffsets[queue] = offset;
        }

        var size = row["n"].IsNumber ? row["n"].AsInt64 : 0;
        AtOpen[queue] = AtOpen.TryGetValue(queue, out var info)
            ? info with { Count = info.Count + 1, Bytes = info.Bytes + size, LastOffset = offset }
            : new QueueLogInfo(1, size, offset, offset);
        Count++;
    }
}
