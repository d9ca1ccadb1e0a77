int hits;
void record(int x) { hits += x; }
