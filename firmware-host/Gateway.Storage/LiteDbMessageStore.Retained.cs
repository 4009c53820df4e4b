using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;
using Gateway.Routing;
using LiteDB;

namespace Gateway.Storage;

// Retained messages: one document per topic in the "retained" collection. LiteDB refuses index
// keys of 1,023 bytes or more, and MQTT topics go up to 65,535 bytes, so a topic longer than
// MaxKeyBytes is keyed by its SHA-256 instead ('#' and 64 hex digits: '#' never appears in a
// topic a client may publish to). Every document carries its topic ("mt"), so reading back never
// depends on the key; documents written before "mt" existed are keyed by their topic.
public sealed partial class LiteDbMessageStore
{
    /// <summary>Topics up to this many UTF-8 bytes are their own key.</summary>
    internal const int MaxKeyBytes = 1000;

    // A batch of retained messages read per writer operation: bounded by count and by bytes.
    private const int RetainedBatch = 256;
    private const int RetainedBatchBytes = 1024 * 1024;

    private ILiteCollection<BsonDocument> Retained => _database.GetCollection(MessageDocument.RetainedCollection);

    public ValueTask SetRetainedAsync(string topic, GatewayMessage? message, CancellationToken cancellationToken) =>
        new(SubmitAsync(new SetRetainedOperation(topic, message), cancellationToken).AsTask());

    /// <summary>
    /// Every retained message, read a batch at a time (each batch one short read on the writer
    /// thread), so reading them takes memory for one batch, not for all of them.
    /// </summary>
    public async IAsyncEnumerable<KeyValuePair<string, GatewayMessage>> ReadRetainedAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        string? after = null;
        while (true)
        {
            var batch = await SubmitAsync(new ReadRetainedOperation(after), cancellationToken);
            foreach (var item in batch.Messages)
            {
                yield return item;
            }

            if (batch.LastKey is null)
            {
                yield break;
            }

            after = batch.LastKey;
        }
    }

    /// <summary>Deletes every retained message, a batch per transaction.</summary>
    public async ValueTask ClearRetainedAsync(CancellationToken cancellationToken)
    {
        while (await SubmitAsync(new ClearRetainedOperation(), cancellationToken))
        {
        }
    }

    internal static string RetainedKey(string topic)
    {
        if (Encoding.UTF8.GetByteCount(topic) <= MaxKeyBytes)
        {
            return topic;
        }

        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(topic), hash);
        return "#" + Convert.ToHexStringLower(hash);
    }

    private sealed class SetRetainedOperation(string topic, GatewayMessage? message) : StoreOperation<bool>
    {
        public override long WriteBytes => PageSize + (message is null ? 0 : message.Body.Length + (topic.Length * 6L)); // UTF-8 up to 3 bytes a char, twice

        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var key = RetainedKey(topic);
            if (message is null)
            {
                SetResult(store.Retained.Delete(key));
            }
            else
            {
                var document = MessageDocument.ToDocument(string.Empty, 0, message, TimeSpan.Zero);
                document["_id"] = key;
                document["mt"] = topic;
                SetResult(store.Retained.Upsert(document));
            }

            return StoreEffect.MustFlush;
        }
    }

    private readonly record struct RetainedBatchResult(List<KeyValuePair<string, GatewayMessage>> Messages, string? LastKey);

    // The batch after 'after' (from the first key when null); LastKey is null once nothing follows.
    private sealed class ReadRetainedOperation(string? after) : StoreOperation<RetainedBatchResult>
    {
        public override long WriteBytes => 0;

        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var messages = new List<KeyValuePair<string, GatewayMessage>>();
            var query = after is null ? Query.GTE("_id", string.Empty) : Query.GT("_id", after);
            string? last = null;
            long bytes = 0;
            foreach (var document in store.Retained.Find(query))
            {
                if (messages.Count >= RetainedBatch || bytes >= RetainedBatchBytes)
                {
                    SetResult(new RetainedBatchResult(messages, last));
                    return StoreEffect.None;
                }

                last = document["_id"].AsString;
                var topic = document.TryGetValue("mt", out var mt) && mt.IsString ? mt.AsString : last;
                var message = MessageDocument.ToMessage(document);
                bytes += message.Body.Length + topic.Length;
                messages.Add(new(topic, message));
            }

            SetResult(new RetainedBatchResult(messages, null));
            return StoreEffect.None;
        }
    }

    // True while more are left.
    private sealed class ClearRetainedOperation : StoreOperation<bool>
    {
        public override long WriteBytes => (long)PageSize * RetainedBatch;

        public override StoreEffect Apply(LiteDbMessageStore store)
        {
            var keys = store.Retained.Query().Select("{ _id }").Limit(RetainedBatch).ToEnumerable().Select(static d => d["_id"]).ToList();
            foreach (var key in keys)
            {
                store.Retained.Delete(key);
            }

            SetResult(keys.Count == RetainedBatch);
            return keys.Count > 0 ? StoreEffect.MustFlush : StoreEffect.None;
        }
    }
}
