/* An intrusive doubly-linked list (the Linux/nginx queue idea): the node lives
 * inside the element, so linking allocates nothing. */
#ifndef MG_CORE_LIST_H
#define MG_CORE_LIST_H

#include <stddef.h>

struct mg_list {
    struct mg_list *prev, *next;
};

#define MG_LIST_INIT(l)                                                                            \
    {                                                                                              \
        &(l), &(l)                                                                                 \
    }
#define mg_list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define mg_list_each(pos, tmp, head)                                                               \
    for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head);                               \
         (pos) = (tmp), (tmp) = (pos)->next)

static inline void mg_list_init(struct mg_list *l)
{
    l->prev = l->next = l;
}
static inline int mg_list_empty(const struct mg_list *l)
{
    return l->next == l;
}
static inline void mg_list_push(struct mg_list *head, struct mg_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void mg_list_remove(struct mg_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}
static inline int mg_list_linked(const struct mg_list *n)
{
    return n->next != n && n->next != NULL;
}

#endif
