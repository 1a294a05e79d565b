// A vector whose resize() leaves elements uninitialised: large outputs that are written in
// full right after allocation (neighbour lists) skip a redundant zero-fill pass.
#pragma once

#include <memory>
#include <new>
#include <utility>
#include <vector>

namespace cryspext {

template <typename T, typename Base = std::allocator<T>>
struct default_init_allocator : Base {
    template <typename U>
    struct rebind {
        using other = default_init_allocator<U, typename std::allocator_traits<Base>::template rebind_alloc<U>>;
    };
    using Base::Base;
    template <typename U>
    void construct(U* p) noexcept(std::is_nothrow_default_constructible<U>::value) {
        ::new (static_cast<void*>(p)) U;  // default-, not value-initialisation
    }
    template <typename U, typename... Args>
    void construct(U* p, Args&&... args) {
        std::allocator_traits<Base>::construct(static_cast<Base&>(*this), p, std::forward<Args>(args)...);
    }
};

template <typename T>
using uvector = std::vector<T, default_init_allocator<T>>;

}  // namespace cryspext
