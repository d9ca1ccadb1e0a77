__thread int per_thread_count;
int bump(void) { return ++per_thread_count; }
