using System.Globalization;
using LiteDB;
using Microsoft.Extensions.Logging;

namespace Gateway.Storage;

/// <summary>
/// Opens the database file, and when it cannot be read, moves it aside, copies every message
/// that can still be read into a fresh file and says so loudly, so the service never
/// crash-loops on its own data.
/// </summary>
internal static class StoreRecovery
{
    /// <summary>
    /// Opens the file and runs <paramref name="scan"/> over it (it must read every message's key:
    /// that is the damage probe); on damage, recovers into a fresh file and scans that.
    /// </summary>
    public static (LiteDatabase Database, LiteDbLogFile LogFile, T Scan) OpenOrRecover<T>(string path, long checkpointBytes, ILogger logger, Func<LiteDatabase, LiteDbLogFile, T> scan)
    {
        try
        {
            var cut = LiteDbLogFile.CutTornTail(path);
            if (cut > 0)
            {
                StoreLog.TornLogCut(logger, path, cut);
            }

            var (database, logFile) = Open(path, checkpointBytes);
            try
            {
                return (database, logFile, scan(database, logFile));
            }
            catch
            {
                database.Dispose();
                logFile.Dispose();
                throw;
            }
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            var movedTo = $"{path}.damaged-{DateTime.UtcNow.ToString("yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture)}";
            File.Move(path, movedTo);
            var logFile = LiteDbLogFile.PathOf(path);
            if (File.Exists(logFile))
            {
                File.Move(logFile, LiteDbLogFile.PathOf(movedTo));
            }

            var (fresh, freshLog) = Open(path, checkpointBytes);
            var (recovered, lost) = Salvage(movedTo, fresh, freshLog);
            StoreLog.Recovered(logger, path, ex.Message, movedTo, recovered, lost);
            return (fresh, freshLog, scan(fresh, freshLog));
        }
    }

    // Every checkpoint goes through LiteDbLogFile: LiteDB's own runs inside Commit(), before the
    // store could fsync the transaction it wrote.
    private static (LiteDatabase Database, LiteDbLogFile LogFile) Open(string path, long checkpointBytes)
    {
        var database = new LiteDatabase(new ConnectionString { Filename = path, Connection = ConnectionType.Direct });
        try
        {
            database.CheckpointSize = 0;
            return (database, LiteDbLogFile.Open(path, checkpointBytes));
        }
        catch
        {
            database.Dispose();
            throw;
        }
    }

    // Messages first, then retained messages, definitions and the store clock (so stored ages carry on).
    private static (long Recovered, long Lost) Salvage(string damaged, LiteDatabase fresh, LiteDbLogFile freshLog)
    {
        long recovered = 0, lost = 0;
        try
        {
            using var source = new LiteDatabase(new ConnectionString { Filename = damaged, Connection = ConnectionType.Direct, ReadOnly = true });
            foreach (var name in (ReadOnlySpan<string>)[MessageDocument.Collection, SegmentDocuments.Headers, SegmentDocuments.Records, MessageDocument.RetainedCollection, LiteDbMessageStore.DefinitionsCollection, MessageDocument.MetaCollection])
            {
                var (copied, failed) = Copy(source, fresh, freshLog, name);
                if (name == MessageDocument.Collection)
                {
                    (recovered, lost) = (copied, failed);
                }
            }
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            // Nothing readable.
        }

        var (inSegments, lostInSegments) = Reconcile(fresh);
        freshLog.Checkpoint(fresh);
        return (recovered + inSegments, lost + lostInSegments);
    }

    // Keeps the segments whose records were copied whole: a header without its records is
    // dropped, records without their header get a new one (nothing of them counted as removed).
    private static (long Recovered, long Lost) Reconcile(LiteDatabase fresh)
    {
        long recovered = 0, lost = 0;
        var headers = fresh.GetCollection(SegmentDocuments.Headers);
        var records = fresh.GetCollection(SegmentDocuments.Records);
        var byId = new Dictionary<long, BsonDocument>();
        foreach (var header in headers.FindAll())
        {
            byId[header["_id"].AsInt64] = header;
        }

        // A batch per read transaction, as at open: one pass would hold every page it read in memory.
        long after = long.MinValue;
        List<BsonDocument> batch;
        do
        {
            batch = records.Find(Query.GT("_id", after), limit: 64).ToList();
            foreach (var document in batch)
            {
                after = document["_id"].AsInt64;
                var (kept, missing) = ReconcileSegment(headers, records, byId, document);
                recovered += kept;
                lost += missing;
            }
        }
        while (batch.Count > 0);

        foreach (var (id, header) in byId)
        {
            headers.Delete(id);
            lost += Segment.FromHeader(header).Live;
        }

        return (recovered, lost);
    }

    // One segment's records: what of them is kept (and counted recovered) or lost.
    private static (long Recovered, long Lost) ReconcileSegment(ILiteCollection<BsonDocument> headers, ILiteCollection<BsonDocument> records, Dictionary<long, BsonDocument> byId, BsonDocument document)
    {
        var id = document["_id"].AsInt64;
        var blob = document["d"].AsBinary;
        int count;
        long bodyBytes;
        try
        {
            count = SegmentLog.Parse(blob, out bodyBytes);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            records.Delete(id);
            return (0, 1);
        }

        if (byId.Remove(id, out var header) && Segment.FromHeader(header) is { } segment && segment.Count == count)
        {
            return (segment.Live, 0);
        }

        var first = document["f"].AsInt64;
        headers.Upsert(new BsonDocument { ["_id"] = id, ["q"] = document["q"], ["f"] = first, ["l"] = first + count - 1, ["n"] = bodyBytes, ["z"] = blob.Length });
        return (count, 0);
    }

    // A checkpoint whenever the log is full: LiteDB keeps every page of its log in memory until one.
    private static (long Copied, long Lost) Copy(LiteDatabase source, LiteDatabase target, LiteDbLogFile targetLog, string collection)
    {
        long copied = 0;
        try
        {
            var into = target.GetCollection(collection);
            using var documents = source.GetCollection(collection).FindAll().GetEnumerator();
            while (documents.MoveNext())
            {
                into.Upsert(documents.Current);
                if (++copied % 64 == 0 && targetLog.IsFull)
                {
                    targetLog.Checkpoint(target);
                }
            }

            return (copied, 0);
        }
        catch (Exception ex) when (IsDamage(ex))
        {
            return (copied, 1); // past the damage, LiteDB cannot follow the page chain
        }
    }

    internal static bool IsDamage(Exception ex) =>
        ex is LiteException or InvalidCastException or IndexOutOfRangeException or ArgumentException or InvalidOperationException or IOException or FormatException or OverflowException or NullReferenceException;
}
