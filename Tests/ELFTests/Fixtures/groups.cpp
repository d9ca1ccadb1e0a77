// SPDX-License-Identifier: GPL-2.0-only
// Inline functions and templates give COMDAT section groups (SHT_GROUP).
template <typename T> struct Box {
    T value;
    T twice() const { return value + value; }
};

inline int shared_helper(int x) { return x * 3; }

int use_boxes(int a, long b) {
    Box<int> x{a};
    Box<long> y{b};
    return x.twice() + (int)y.twice() + shared_helper(a);
}
