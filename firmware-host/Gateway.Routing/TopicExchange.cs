using System.Collections.Concurrent;

namespace Gateway.Routing;

/// <summary>
/// Routes by dotted binding patterns: <c>*</c> matches exactly one word, <c>#</c> zero or more.
/// Bindings live in a trie keyed by word, so routing costs the length of the key (times the
/// wildcards along the way), not the number of bindings. Readers never lock: children are
/// concurrent dictionaries and each node's binding array is replaced, never mutated.
/// As in MQTT (section 4.7.2), a wildcard in the first position does not match a first word
/// that starts with <c>$</c>, so <c>#</c> does not see <c>$SYS</c> topics.
/// https://www.rabbitmq.com/docs/exchanges#topic
/// </summary>
internal sealed class TopicExchange(string name, bool durable, bool autoDelete)
    : Exchange(name, ExchangeType.Topic, durable, autoDelete)
{
    private readonly Node _root = new();

    internal override void Route(GatewayMessage message, RouteTargets targets) =>
        Match(_root, message.RoutingKey, 0, first: true, targets);

    private protected override void AddToIndex(Binding binding)
    {
        var node = _root;
        foreach (var range in binding.Key.AsSpan().Split('.'))
        {
            node = node.GetOrAddChild(binding.Key[range]);
        }

        node.Bindings = With(node.Bindings, binding);
    }

    private protected override void RemoveFromIndex(Binding binding)
    {
        var path = new List<(Node Parent, string Word)>();
        var node = _root;
        foreach (var range in binding.Key.AsSpan().Split('.'))
        {
            var word = binding.Key[range];
            var child = node.GetChild(word);
            if (child is null)
            {
                return;
            }

            path.Add((node, word));
            node = child;
        }

        node.Bindings = Without(node.Bindings, binding);

        // Prune empty branches so churning subscriptions do not grow the trie forever.
        for (var i = path.Count - 1; i >= 0 && node.IsEmpty; i--)
        {
            var (parent, word) = path[i];
            parent.RemoveChild(word);
            node = parent;
        }
    }

    // pos is the index where the next word starts; pos > key.Length means no words remain.
    private static void Match(Node node, string key, int pos, bool first, RouteTargets targets)
    {
        if (pos > key.Length)
        {
            targets.AddAll(node.Bindings);
            if (node.Hash is { } trailingHash)
            {
                // "a.#" matches "a": '#' may stand for zero words.
                Match(trailingHash, key, pos, first: false, targets);
            }

            return;
        }

        var end = key.IndexOf('.', pos);
        if (end < 0)
        {
            end = key.Length;
        }

        var word = key.AsSpan(pos, end - pos);
        var next = end + 1;

        if (node.TryGetChild(word, out var literal))
        {
            Match(literal, key, next, first: false, targets);
        }

        if (first && word.Length > 0 && word[0] == '$')
        {
            return;
        }

        if (node.Star is { } star)
        {
            Match(star, key, next, first: false, targets);
        }

        if (node.Hash is { } hash)
        {
            // '#' swallows zero, one, ... or all remaining words.
            var p = pos;
            while (true)
            {
                Match(hash, key, p, first: false, targets);
                if (p > key.Length)
                {
                    break;
                }

                var dot = key.IndexOf('.', p);
                p = dot < 0 ? key.Length + 1 : dot + 1;
            }
        }
    }

    private sealed class Node
    {
        private ConcurrentDictionary<string, Node>? _children;
        private ConcurrentDictionary<string, Node>.AlternateLookup<ReadOnlySpan<char>> _lookup;

        public volatile Binding[] Bindings = [];
        public volatile Node? Star;
        public volatile Node? Hash;

        public bool IsEmpty => Bindings.Length == 0 && Star is null && Hash is null && (_children is null || _children.IsEmpty);

        public bool TryGetChild(ReadOnlySpan<char> word, out Node child)
        {
            var children = Volatile.Read(ref _children);
            if (children is null)
            {
                child = null!;
                return false;
            }

            return _lookup.TryGetValue(word, out child!);
        }

        public Node? GetChild(string word) => word switch
        {
            "*" => Star,
            "#" => Hash,
            _ => _children is not null && _children.TryGetValue(word, out var child) ? child : null,
        };

        public Node GetOrAddChild(string word)
        {
            switch (word)
            {
                case "*":
                    return Star ??= new Node();
                case "#":
                    return Hash ??= new Node();
                default:
                    if (_children is null)
                    {
                        var children = new ConcurrentDictionary<string, Node>(StringComparer.Ordinal);
                        _lookup = children.GetAlternateLookup<ReadOnlySpan<char>>();
                        Volatile.Write(ref _children, children);
                    }

                    return _children.GetOrAdd(word, static _ => new Node());
            }
        }

        public void RemoveChild(string word)
        {
            switch (word)
            {
                case "*":
                    Star = null;
                    break;
                case "#":
                    Hash = null;
                    break;
                default:
                    _children?.TryRemove(word, out _);
                    break;
            }
        }
    }
}
