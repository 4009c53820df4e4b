namespace Gateway.Routing;

/// <summary>A growable FIFO over a circular array: no allocation per element once warmed up.</summary>
internal sealed class RingBuffer<T>
{
    private const int MinCapacity = 16;
    private const int ShrinkThreshold = 4096;

    private T[] _items = new T[MinCapacity];
    private int _head;
    private int _count;

    public int Count => _count;

    public void Push(in T item)
    {
        if (_count == _items.Length)
        {
            Grow();
        }

        _items[(_head + _count) % _items.Length] = item;
        _count++;
    }

    public ref readonly T PeekRef() => ref _items[_head];

    /// <summary>The element <paramref name="index"/> places from the head.</summary>
    public ref readonly T this[int index] => ref _items[(_head + index) % _items.Length];

    public T Pop()
    {
        var item = _items[_head];
        _items[_head] = default!;
        _head = (_head + 1) % _items.Length;
        _count--;
        if (_count == 0)
        {
            _head = 0;
            if (_items.Length > ShrinkThreshold)
            {
                // Give a drained backlog's memory back.
                _items = new T[MinCapacity];
            }
        }

        return item;
    }

    /// <summary>Removes the element <paramref name="index"/> places from the head (moves the ones after it).</summary>
    public void RemoveAt(int index)
    {
        for (var i = index; i < _count - 1; i++)
        {
            _items[(_head + i) % _items.Length] = _items[(_head + i + 1) % _items.Length];
        }

        _items[(_head + _count - 1) % _items.Length] = default!;
        _count--;
        if (_count == 0)
        {
            _head = 0;
        }
    }

    public void Clear()
    {
        _items = new T[MinCapacity];
        _head = 0;
        _count = 0;
    }

    private void Grow()
    {
        var bigger = new T[_items.Length * 2];
        for (var i = 0; i < _count; i++)
        {
            bigger[i] = _items[(_head + i) % _items.Length];
        }

        _items = bigger;
        _head = 0;
    }
}
