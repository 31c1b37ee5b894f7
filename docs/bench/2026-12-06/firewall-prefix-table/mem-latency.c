// Dependent random reads (pointer chase) over a buffer: ns per read, with 4 KiB pages (no THP) or THP.
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(int argc,char**argv){
  size_t mb=atoi(argv[1]); int huge=atoi(argv[2]);
  size_t len=mb<<20, n=len/64;
  char*buf=mmap(0,len,PROT_READ|PROT_WRITE,MAP_PRIVATE|MAP_ANONYMOUS,-1,0);
  madvise(buf,len,huge?MADV_HUGEPAGE:MADV_NOHUGEPAGE);
  size_t*perm=malloc(n*sizeof(size_t)); for(size_t i=0;i<n;i++)perm[i]=i;
  uint64_t x=88172645463325252ULL;
  for(size_t i=n-1;i>0;i--){x^=x<<13;x^=x>>7;x^=x<<17;size_t j=x%(i+1);size_t t=perm[i];perm[i]=perm[j];perm[j]=t;}
  for(size_t i=0;i<n;i++)*(char**)(buf+perm[i]*64)=buf+perm[(i+1)%n]*64;
  char*p=buf+perm[0]*64; size_t iters=4000000;
  double t0=now(); for(size_t i=0;i<iters;i++)p=*(char**)p; double t1=now();
  printf("%zu MiB %s pages: %.1f ns per dependent random read (%p)\n",mb,huge?"2 MiB":"4 KiB",(t1-t0)/iters,(void*)p);
}
