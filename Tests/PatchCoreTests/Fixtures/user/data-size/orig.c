int buffer[8];
int *slot(int i) { return &buffer[i & 7]; }
