namespace Gateway.Routing;

/// <summary>
/// The queues one publish goes to, each once however many bindings matched. Reused per thread,
/// so routing allocates nothing.
/// </summary>
internal sealed class RouteTargets
{
    private const int LinearLimit = 16;

    [ThreadStatic]
    private static RouteTargets? t_cached;

    private readonly List<MessageQueue> _queues = new(8);
    private readonly HashSet<MessageQueue> _seen = new(ReferenceEqualityComparer.Instance);

    public int Count => _queues.Count;

    public MessageQueue this[int index] => _queues[index];

    public static RouteTargets Rent()
    {
        var targets = t_cached ?? new RouteTargets();
        t_cached = null;
        return targets;
    }

    public static void Return(RouteTargets targets)
    {
        targets._queues.Clear();
        targets._seen.Clear();
        t_cached = targets;
    }

    public void Add(MessageQueue queue)
    {
        if (_queues.Count < LinearLimit)
        {
            foreach (var q in _queues)
            {
                if (ReferenceEquals(q, queue))
                {
                    return;
                }
            }

            _queues.Add(queue);
            if (_queues.Count == LinearLimit)
            {
                foreach (var q in _queues)
                {
                    _seen.Add(q);
                }
            }

            return;
        }

        if (_seen.Add(queue))
        {
            _queues.Add(queue);
        }
    }

    public void AddAll(Binding[] bindings)
    {
        foreach (var binding in bindings)
        {
            Add(binding.Queue);
        }
    }
}
